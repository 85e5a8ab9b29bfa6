"""4. post() from other threads, the wakeup callback, and destroying a node
while posted functions are pending (nothing runs, nothing leaks)."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any, Iterator, List

import pytest

import parley
from parley import node as node_module


@pytest.fixture
def store() -> Iterator[parley.Store]:
    with parley.Store.memory() as s:
        yield s


def make_node(store: parley.Store, **kwargs: Any) -> parley.Node:
    node = parley.Node(store, node_id="n1", codec="json", **kwargs)
    node.start()
    return node


def test_4_1_posts_from_threads_run_on_the_node_thread_in_order(store: parley.Store) -> None:
    wakeups: List[int] = []
    woken = threading.Event()

    def wakeup() -> None:  # on the posting thread
        wakeups.append(threading.get_ident())
        woken.set()

    node = make_node(store, on_wakeup=wakeup)
    ran: List[Any] = []
    main = threading.get_ident()

    def poster(t: int) -> None:
        for i in range(50):
            node.post(lambda n, t=t, i=i: ran.append((t, i, n is node, threading.get_ident() == main)))

    threads = [threading.Thread(target=poster, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert woken.is_set() and len(wakeups) == 200 and main not in wakeups
    assert node.run_posted() == 200
    assert node.run_posted() == 0
    assert all(same and on_main for _, _, same, on_main in ran)
    for t in range(4):
        assert [i for tt, i, _, _ in ran if tt == t] == list(range(50))
    node.close()
    assert not node._slots


def test_4_2_flush_runs_posted_functions_and_they_may_call_the_node(store: parley.Store) -> None:
    store.create_group("g", "alice")
    node = make_node(store)
    counts: List[int] = []
    node.post(lambda n: n.open_session(1, "alice"))
    node.post(lambda n: counts.append(n.session_count))
    node.flush()
    assert counts == [1]
    node.post(lambda n: n.close())  # not from a posted function: raised by the flush
    with pytest.raises(parley.InvalidArgument):
        node.flush()
    assert not node.closed
    node.close()


def test_4_3_a_posted_exception_is_raised_by_run_posted(store: parley.Store) -> None:
    node = make_node(store)
    ran: List[int] = []
    node.post(lambda n: ran.append(1))
    node.post(lambda n: 1 / 0)
    node.post(lambda n: ran.append(3))
    with pytest.raises(ZeroDivisionError):
        node.run_posted()
    assert ran == [1, 3]  # the others ran
    node.close()


class Job:
    def __init__(self, log: List[str]) -> None:
        self.log = log

    def __call__(self, node: parley.Node) -> None:
        self.log.append("ran")


def test_4_4_destroying_a_node_with_pending_posts(store: parley.Store) -> None:
    log: List[str] = []
    node = make_node(store)
    refs = []
    for _ in range(100):
        job = Job(log)
        refs.append(weakref.ref(job))
        node.post(job)
        del job
    keys = set(node._slots)
    assert len(keys) == 100
    node.close()  # drops the posts: their free functions release the jobs
    gc.collect()
    assert log == []
    assert all(r() is None for r in refs)
    assert not node._slots and not (keys & set(node_module._owners))
    with pytest.raises(parley.Closed):
        node.post(Job(log))


def test_4_5_posting_threads_racing_the_close(store: parley.Store) -> None:
    for _round in range(5):
        node = make_node(store)
        outcomes: List[str] = []
        started = threading.Barrier(4)

        def poster() -> None:
            started.wait()
            while True:
                try:
                    node.post(lambda n: None)
                except parley.Closed:
                    outcomes.append("closed")
                    return

        threads = [threading.Thread(target=poster) for _ in range(3)]
        for t in threads:
            t.start()
        started.wait()
        node.run_posted()
        node.close()
        for t in threads:
            t.join(timeout=30)
        assert outcomes == ["closed"] * 3
        assert not node._slots


def test_4_6_a_node_dropped_without_close_is_destroyed(store: parley.Store) -> None:
    log: List[str] = []
    node = make_node(store)
    node.on_deliver = lambda s, frames, n=node: n.session_count  # a cycle through the node
    job = Job(log)
    job_ref, node_ref = weakref.ref(job), weakref.ref(node)
    node.post(job)
    keys = set(node._slots)
    del node, job
    gc.collect()
    assert node_ref() is None and job_ref() is None and log == []
    assert not (keys & set(node_module._owners))


def test_4_7_posting_from_the_wakeup_callback_is_refused(store: parley.Store) -> None:
    node = make_node(store)
    refused: List[Exception] = []

    def wakeup() -> None:
        try:
            node.post(lambda n: None)  # would deadlock in the library
        except parley.InvalidArgument as e:
            refused.append(e)

    node.on_wakeup = wakeup
    node.post(lambda n: None)
    assert len(refused) == 1 and "on_wakeup" in refused[0].message
    assert node.run_posted() == 1
    node.close()
