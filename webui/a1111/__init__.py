"""The gradio side of A1111 extension compatibility: Gradio 3 calls on Gradio 6, A1111's ui_components,
and building Script UIs. Given to modules.a1111's import scope, so only extension code sees it."""
