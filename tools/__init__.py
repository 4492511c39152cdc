"""Project tools that are not part of the web UI (dataset and model builders)."""
