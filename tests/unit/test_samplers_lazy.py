"""The sampler table is plain data: its schedule checks need no diffusers import (start-up serves before
diffusers loads), and the data it keeps about diffusers' classes matches the classes."""
from __future__ import annotations

import inspect
import subprocess
import sys

from modules import samplers
from tests.helpers.server import ROOT, _env


def test_schedule_options_table_matches_the_diffusers_classes():
    options = set(samplers.SCHEDULE_KEYS).union(*(s.options for s in samplers.SCHEDULES))
    for spec in samplers.SAMPLERS:
        taken = set(inspect.signature(spec.scheduler_cls.__init__).parameters) & options
        assert samplers.SCHEDULE_OPTIONS_TAKEN.get(spec.scheduler, taken) == taken, spec.scheduler


def test_resolving_and_listing_samplers_imports_no_diffusers():
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from modules import samplers\n"
              "for s in samplers.SAMPLERS:\n"
              "    for sch in samplers.SCHEDULES: samplers.resolve_sampler(s.name, sch.name)\n"
              "samplers.list_samplers(); samplers.list_schedulers()\n"
              "print('diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script, str(ROOT)], env=_env(None), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
