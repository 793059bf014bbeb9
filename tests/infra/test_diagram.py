"""docs/how-it-works.md's diagram of the deploy state machine is generated from the synthesized definition
(``python -m immutable_deploy.diagram --write``, or ``make diagram``) and must be current."""

from __future__ import annotations

from immutable_deploy import diagram


def test_the_readme_diagram_is_current():
    expected = diagram.readme_block(diagram.generate())
    actual = diagram.current_block(diagram.DOC.read_text())
    assert actual == expected, (
        "docs/how-it-works.md's deploy state machine diagram differs from the synthesized definition: "
        "run `make diagram` "
        "(python -m immutable_deploy.diagram --write) and commit docs/how-it-works.md"
    )


def test_every_state_but_the_summarised_recorders_is_drawn():
    chart = diagram.Chart(diagram.deploy_definition())
    text = chart.mermaid()
    for name in chart.states:
        if name in chart.hidden:
            assert name.endswith((" failed", " could not undo")) or name.startswith("Explain "), name
            continue
        assert f"  {diagram.node_id(name)}" in text, name
    # the catches into the compensating branch are one edge, from the guarded subgraph
    into_compensation = [line for line in text.splitlines() if line.endswith(" Compensate") and "-->" not in line]
    assert into_compensation == ['  guarded -.->|"any failure: state, error and cause go to $.failure"| Compensate']
    assert "DiscoverBlue" in chart.guarded_region and "SuspendBlue" in chart.guarded_region
    assert "ReleaseLock" not in chart.guarded_region and "ValidateRequest" not in chart.guarded_region


def test_polling_loops_and_choice_labels_are_visible():
    text = diagram.generate()
    assert "WaitForImage --> CheckImage" in text
    assert "CheckImage --> Image_available" in text
    assert 'Image_available -->|"otherwise"| WaitForImage' in text
    assert 'Image_available -->|"available"| TerminateStaging' in text
    assert 'Approval_required -->|"approval required"| AwaitApproval' in text
    assert "NotifyDeployed<br/><i>sns:publish</i>" in text


def test_conditions_in_short_words():
    assert diagram.condition({"Variable": "$.bake.status", "StringEquals": "READY"}) == "READY"
    assert diagram.condition({"Variable": "$.report.complete", "BooleanEquals": False}) == "report not complete"
    assert diagram.condition({"Variable": "$.blue.primary", "IsNull": True}) == "no blue primary"
    assert diagram.condition({"Variable": "$.undo.check_blue.Error", "IsPresent": True}) == "check blue failed"
    assert (
        diagram.condition(
            {"Or": [{"Variable": "$.a.x", "StringEquals": "A"}, {"Variable": "$.a.y", "StringEquals": "B"}]}
        )
        == "A or B"
    )
