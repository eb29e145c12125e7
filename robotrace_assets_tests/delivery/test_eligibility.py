"""The eligibility matrix: review x license x consent x proof x tenant x policy."""

import itertools

import pytest

from robotrace_assets.delivery.buyers import (
    Buyer,
    BuyerConfigError,
    delivery_partition,
    load_buyers,
    parse_delivery_partition,
)
from robotrace_assets.delivery.eligibility import ProofState, select

TENANT, OTHER = "ten_A", "ten_B"


def buyer(policy: str) -> Buyer:
    return Buyer(
        "acme",
        frozenset({"robotics_training"}),
        policy,
        "raw",
        "copy",
        licensed_tenants=frozenset({TENANT}),
    )


def clip(approved: bool, licensed: bool, consent: bool, tenant: str) -> dict:
    return {
        "clip_id": "clip_x",
        "segment_id": "seg_x",
        "final_status": "approved" if approved else "rejected",
        "allowed_use": ["robotics_training"] if licensed else ["internal_eval"],
        "license_scope_id": "lic_1",
        "consent_receipt_id": "consent_1" if consent else None,
        "tenant_id": tenant,
    }


MATRIX = list(
    itertools.product(
        [True, False],
        [True, False],
        [True, False],
        [True, False],
        [TENANT, OTHER],
        ["strict", "lenient"],
    )
)


@pytest.mark.parametrize(("approved", "licensed", "consent", "proven", "tenant", "policy"), MATRIX)
def test_eligibility_matrix(approved, licensed, consent, proven, tenant, policy) -> None:
    proofs = {"seg_x": ProofState(proven, proven, () if proven else ("sha256: failed",))}
    selection = select([clip(approved, licensed, consent, tenant)], buyer(policy), proofs)
    in_scope = approved and licensed and consent and tenant == TENANT
    assert bool(selection.eligible) == (in_scope and proven)
    assert bool(selection.proof_blocked) == (in_scope and not proven)
    assert bool(selection.excluded) == (not in_scope)
    # Strict blocks the whole delivery on a proof failure in scope; lenient lists it.
    assert selection.blocked == (policy == "strict" and in_scope and not proven)


def test_exclusion_reasons_name_the_rule() -> None:
    selection = select([clip(False, False, False, OTHER)], buyer("lenient"), {})
    (reasons,) = [e.reasons for e in selection.excluded]
    text = " ".join(reasons)
    for expected in ("not approved", "does not allow", "no consent receipt", "not licensed"):
        assert expected in text


def test_lenient_keeps_good_clips_and_lists_the_bad() -> None:
    good = clip(True, True, True, TENANT)
    bad = {**good, "clip_id": "clip_y", "segment_id": "seg_y"}
    proofs = {"seg_x": ProofState(True, True), "seg_y": ProofState(True, False, ("proxy",))}
    lenient = select([good, bad], buyer("lenient"), proofs)
    assert [c["clip_id"] for c in lenient.eligible] == ["clip_x"]
    assert [(e.clip_id, e.reasons) for e in lenient.proof_blocked] == [("clip_y", ("proxy",))]
    assert not lenient.blocked
    assert select([good, bad], buyer("strict"), proofs).blocked


def test_buyer_configuration_is_validated(tmp_path) -> None:
    assert set(load_buyers()) == {"acme_robotics", "evalco"}
    bad = tmp_path / "buyers.json"
    bad.write_text('{"buyers": [{"buyer_id": "Bad Id", "uses": [], "method": "ftp"}]}')
    with pytest.raises(BuyerConfigError, match=r"buyer_id must be"):
        load_buyers(bad)
    assert parse_delivery_partition(delivery_partition("acme", "d1")) == ("acme", "d1")
    with pytest.raises(BuyerConfigError):
        delivery_partition("acme", "../x")


@pytest.mark.parametrize("declared", [True, False])
def test_buyer_can_require_client_declared_hashes(declared: bool) -> None:
    strict = Buyer(
        "acme",
        frozenset({"robotics_training"}),
        "strict",
        "raw",
        "copy",
        licensed_tenants=frozenset({TENANT}),
        require_declared_sha256=True,
    )
    proofs = {"seg_x": ProofState(True, True, (), sha256_declared=declared)}
    selection = select([clip(True, True, True, TENANT)], strict, proofs)
    assert bool(selection.eligible) == declared
    if not declared:
        assert "only observed" in selection.excluded[0].reasons[0]
    assert bool(select([clip(True, True, True, TENANT)], buyer("strict"), proofs).eligible)
