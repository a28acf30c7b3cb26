"""The page's login throttle under a flood of client addresses (many IPv6
addresses cost an attacker nothing): what it remembers stays bounded, the
addresses it forgets are the ones least recently seen, and a locked-out address
stays locked however many others come after it."""

from publisher.web.guards import LoginThrottle

FAILURES, WINDOW = 3, 60.0


def throttle(remembered: int) -> LoginThrottle:
    t = LoginThrottle(FAILURES, WINDOW)
    t.MAX_CLIENTS = remembered
    return t


def addresses(prefix: str, count: int) -> list[str]:
    return [f"2001:db8:{prefix}::{i:x}" for i in range(count)]


def test_a_flood_of_addresses_within_the_window_is_remembered_only_up_to_the_bound():
    guard = throttle(remembered=100)
    early = "2001:db8:ee::1"
    for _ in range(FAILURES - 1):
        guard.failed(early)
    for address in addresses("f", 1_000):  # all inside the window: none has expired
        guard.failed(address)
    # The early address, least recently seen, was forgotten: its next failure is its first.
    assert guard.failed(early) == 1 and guard.retry_after(early) == 0
    assert len(guard) <= 100


def test_a_locked_out_address_stays_locked_while_older_addresses_are_forgotten():
    guard = throttle(remembered=100)
    older = addresses("a", 50)
    for address in older:
        guard.failed(address)
        guard.failed(address)
    attacker = "2001:db8:bad::7"
    for _ in range(FAILURES):
        guard.failed(attacker)
    assert guard.retry_after(attacker) > 0
    for address in addresses("b", 80):  # pushes the remembered addresses past the bound
        guard.failed(address)
    assert guard.retry_after(attacker) > 0
    assert guard.failed(older[0]) == 1  # forgotten: two failures ago no longer count
    assert len(guard) <= 100
