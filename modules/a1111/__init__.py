"""A1111 extension compatibility: A1111's module names (`modules.scripts`, `modules.shared`, ...) as an
adapter over our core, visible only to A1111 extension code.

Nothing here is imported by the core. An `A1111Compat` object is built per app; extension code runs with
its own `__import__` (see importer.py), so `from modules import shared` inside an extension gives this
app's adapter while the same line in our code still means our own package. See docs/a1111-compat.md.
"""
