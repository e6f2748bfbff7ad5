"""When the launcher starts tritonserver again: backoff, the crash-loop limit, failed loads, first starts."""

from __future__ import annotations

import signal

from tritonclf.serving.restart_policy import MAX_CRASHES_IN_A_ROW, RestartPolicy, exit_code, how_it_ended

SEGV = -signal.SIGSEGV


def test_a_first_start_that_exits_with_a_code_is_not_restarted_and_keeps_it():
    decision = RestartPolicy().after_exit(1, was_up=False, up_s=0.0)
    assert not decision.restart and decision.code == 1
    assert "never became ready" in decision.line


def test_a_crash_is_restarted_even_before_the_server_was_seen_ready():
    # A client can crash a server the moment it listens, before the launcher's next look.
    decision = RestartPolicy().after_exit(SEGV, was_up=False, up_s=0.0)
    assert decision.restart and decision.delay_s == 1.0
    assert "killed by SIGSEGV before it was ready" in decision.line


def test_a_crash_after_the_server_was_up_restarts_with_a_doubling_delay_until_the_limit():
    policy = RestartPolicy()
    delays = []
    for _ in range(MAX_CRASHES_IN_A_ROW - 1):
        decision = policy.after_exit(SEGV, was_up=True, up_s=5.0)
        assert decision.restart, decision.line
        delays.append(decision.delay_s)
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert (
        "killed by SIGSEGV after 5 s up: starting it again in 1 s, crash 1 of 5"
        in RestartPolicy().after_exit(SEGV, was_up=True, up_s=5.0).line
    )
    last = policy.after_exit(SEGV, was_up=True, up_s=5.0)
    assert not last.restart and last.code == 139
    assert "5 crashes in a row" in last.line and "giving up" in last.line


def test_a_minute_up_starts_the_count_and_the_delay_over():
    policy = RestartPolicy()
    for _ in range(MAX_CRASHES_IN_A_ROW - 1):
        policy.after_exit(SEGV, was_up=True, up_s=5.0)
    decision = policy.after_exit(SEGV, was_up=True, up_s=61.0)
    assert decision.restart and decision.delay_s == 1.0 and "crash 1 of 5" in decision.line


def test_a_restart_that_cannot_load_its_models_is_retried_for_as_long_as_it_takes():
    policy = RestartPolicy()
    policy.after_exit(-signal.SIGKILL, was_up=True, up_s=30.0)
    decisions = [policy.after_exit(1, was_up=False, up_s=0.0) for _ in range(20)]
    assert all(d.restart for d in decisions)
    assert decisions[0].delay_s == 2.0 and decisions[-1].delay_s == 60.0
    assert "could not load its models (exit 1" in decisions[0].line


def test_a_healed_server_that_then_fails_to_load_is_retried():
    policy = RestartPolicy()
    policy.healed()
    assert policy.after_exit(1, was_up=False, up_s=0.0).restart


def test_exit_0_is_a_stop_not_a_failure():
    decision = RestartPolicy(ever_up=True).after_exit(0, was_up=True, up_s=100.0)
    assert not decision.restart and decision.code == 0


def test_codes_and_words_for_how_a_server_ended():
    assert exit_code(-9) == 137 and exit_code(1) == 1
    assert how_it_ended(-9) == "killed by SIGKILL" and how_it_ended(2) == "exit 2"
