"""`make demo` runs in CI non-interactively: its outcomes are asserted, not only its exit code."""

from __future__ import annotations

import io

from immutable_deploy import demo


def test_the_demo_tells_the_whole_story():
    out = io.StringIO()
    assert demo.run(speedup=240, out=out, poll_seconds=0.05) == 0, out.getvalue()[-4000:]
    text = out.getvalue()
    # 1. 2.0.0 over 1.0.0, approved by the demo's operator
    assert "$ immutable-deploy deploy web 2.0.0" in text and "Waiting for approval: web 2.0.0" in text
    assert "$ immutable-deploy approve web" in text and "Deployed web 2.0.0" in text
    # 3. 2.1.0 never healthy: rolled back on its own (exit code 5)
    assert "FAILED: DeploymentRolledBack" in text and "(exit code 5)" in text
    # the bake window after each switch: 2.0.0's passes; 2.2.0's alarm goes off and it rolls back
    assert "bake window of 2m00s passed (web-elb-5xx-high)" in text
    assert "failed: BakeWindowAlarm (alarm web-elb-5xx-high went into ALARM during the bake window" in text
    assert text.count("(exit code 5)") == 2
    # 5. by hand back to 1.0.0
    assert "Rolled back web: web-1.0.0 serves again" in text
    # 6. history lists them all, and the summary ends on 1.0.0
    history = text.split("$ immutable-deploy history web")[1]
    assert history.count("deploy ") >= 3 and "rollback" in history
    summary = text.split("Summary: what served web-elb when")[1].splitlines()[1:6]
    assert [line.split()[1] for line in summary][0] == "web-1.0.0"
    assert all(line.split()[1].startswith("web-2.0.0-") for line in summary[1:4])
    assert summary[4].split()[1] == "web-1.0.0"
    assert "Every step ended as expected." in text
