"""The stage's tests.

Commands print through rich consoles, which fix their width when they are built if COLUMNS
is set (pytest-xdist's workers inherit COLUMNS=80); a test that needs a width passes it to the
command it runs. So the consoles are built without one: this package is imported before any
module of the stage.
"""

import os

os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)
