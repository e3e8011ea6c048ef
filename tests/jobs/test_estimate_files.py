"""A render's output file limit follows its frames unless the buyer set one."""
import json
from pathlib import Path

from jobs.estimate import files_per_frame, output_files_needed, with_output_files_for_work
from jobs.spec import parse_spec


ROOT = Path(__file__).resolve().parents[2]


def _spec(frames, **res):
    sc = json.loads((ROOT / "resources" / "scenes" / "table_top.json").read_text())
    sc["outputs"].update({"width": 96, "height": 72, "count": frames})
    return parse_spec({"id": "r", "kind": "render", "params": {"scene": sc}, "resources": res})


def test_a_long_render_gets_room_for_its_files_and_a_buyers_own_limit_stands():
    s = _spec(5000)
    need = output_files_needed(s)
    assert need is not None and need >= 5 * 5000 > s.resources.max_output_files
    assert with_output_files_for_work(s).resources.max_output_files == need
    short = _spec(10)
    assert with_output_files_for_work(short).resources.max_output_files == 10000   # the default already fits
    own = _spec(5000, max_output_files=500)
    assert with_output_files_for_work(own).resources.max_output_files == 500
    other = parse_spec({"id": "p", "kind": "sleep", "params": {"seconds": 1}})
    assert output_files_needed(other) is None and with_output_files_for_work(other) is other
