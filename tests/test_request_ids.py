"""Request ids: "fg-" and 24 hex digits, none handed out twice, a forked child's its own."""

from __future__ import annotations

import os

from gateway.plan import ID_BATCH, new_request_id


def test_ids_are_fg_and_24_hex_digits_and_never_repeat_across_batches() -> None:
    ids = [new_request_id() for _ in range(3 * ID_BATCH + 5)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("fg-") and len(i) == 27 and int(i[3:], 16) >= 0 for i in ids)


def test_a_forked_child_does_not_hand_out_the_ids_its_parent_will() -> None:
    new_request_id()  # the batch is filled: a child forked now shares its bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, ",".join(new_request_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {new_request_id() for _ in range(8)}
    assert len(child) == 8 and not child & parent
