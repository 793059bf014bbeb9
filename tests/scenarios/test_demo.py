"""`make demo` runs in CI non-interactively: its outcomes are asserted, not only its exit code."""

from __future__ import annotations

import io

from immutable_deploy import demo


def test_the_demo_tells_the_whole_story():
    out = io.StringIO()
    assert demo.run(speedup=240, out=out, poll_seconds=0.05) == 0
    text = out.getvalue()
    # 1. 2.0.0 over 1.0.0, approved by the demo's operator
    assert "$ immutable-deploy deploy web 2.0.0" in text and "Waiting for approval: web 2.0.0" in text
    assert "$ immutable-deploy approve web" in text and "Deployed web 2.0.0" in text
    # 3. 2.1.0 never healthy: rolled back on its own (exit code 5)
    assert "FAILED: DeploymentRolledBack" in text and "(exit code 5)" in text
    # 4. by hand back to 1.0.0
    assert "Rolled back web: web-1.0.0 serves again" in text
    # 5. history lists all three, and the summary ends on 1.0.0
    history = text.split("$ immutable-deploy history web")[1]
    assert history.count("deploy ") >= 2 and "rollback" in history
    summary = text.split("Summary: what served web-elb when")[1].splitlines()[1:5]
    assert [line.split()[1] for line in summary][0] == "web-1.0.0"
    assert summary[1].split()[1].startswith("web-2.0.0-") and summary[2].split()[1].startswith("web-2.0.0-")
    assert summary[3].split()[1] == "web-1.0.0"
    assert "Every step ended as expected." in text
