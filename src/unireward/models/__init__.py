"""Model registry (short names -> checkpoints and settings) and tiny offline model builders."""
