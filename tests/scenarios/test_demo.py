"""`make demo` runs a real deployment on the local AWS in real (compressed) time."""
from __future__ import annotations

import io

from immutable_deploy import demo


def test_the_demo_deploys_2_0_0_over_1_0_0():
    out = io.StringIO()
    assert demo.run(speedup=120, version="2.0.0", out=out) == 0
    text = out.getvalue()
    assert "Deployed web 2.0.0" in text and "blue web-1.0.0 kept for rollback" in text
    assert "image pending" in text and "green healthy 3/3" in text
    after = text.split("After:")[1]
    assert "web-1.0.0" not in after and "web-2.0.0-" in after
