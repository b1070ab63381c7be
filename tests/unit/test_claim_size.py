"""How much the intake worker claims: full batches for one account, short rounds while several
send, and full again once only one is left for a while."""

from __future__ import annotations

from adapters.channels import ADAPTERS
from services.intake.worker import ClaimSize, IntakeConfig, Sweep

CONFIG = IntakeConfig(adapters=ADAPTERS, batch_size=50, concurrency=8)


def test_one_account_alone_drains_in_full_batches() -> None:
    sizes = ClaimSize(CONFIG)
    assert sizes.next(0.0) == 50
    sizes.took(Sweep(taken=50, made=0, accounts=1), 0.1)
    assert sizes.next(0.2) == 50


def test_while_several_accounts_send_claims_are_one_round_then_full_again() -> None:
    sizes = ClaimSize(CONFIG, hold_seconds=2.0)
    sizes.took(Sweep(taken=50, made=0, accounts=3), 10.0)
    assert sizes.next(10.1) == CONFIG.concurrency == 8
    sizes.took(Sweep(taken=8, made=0, accounts=1), 10.2)  # one claim of one account: still short
    assert sizes.next(11.9) == 8
    assert sizes.next(12.1) == 50  # nobody else for 2 s


def test_a_round_is_never_more_than_the_batch() -> None:
    small = IntakeConfig(adapters=ADAPTERS, batch_size=4, concurrency=8)
    sizes = ClaimSize(small)
    sizes.took(Sweep(taken=4, made=0, accounts=2), 0.0)
    assert sizes.next(0.5) == 4
