"""docs/security.md's tables of what each role may do are generated from the grants the stack uses
(``python -m immutable_deploy.permissions_doc --write``, or ``make docs``) and must be current."""

from __future__ import annotations


def test_the_security_doc_permissions_are_current():
    from immutable_deploy import permissions_doc

    expected = permissions_doc.block(permissions_doc.generate())
    assert permissions_doc.current_block(permissions_doc.DOC.read_text()) == expected, (
        "docs/security.md's permission tables differ from immutable_deploy.cdk/permissions.py: run `make docs` "
        "(python -m immutable_deploy.permissions_doc --write) and commit docs/security.md"
    )
