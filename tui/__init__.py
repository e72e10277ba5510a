"""Command line, Textual interface and the headless --auto front."""
