"""Memory per user, trimming at turn boundaries, per-user serialisation and the call cap."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from eki_whatsapp.agent import Agent, ModelResponse, ToolCall, tool, trim
from eki_whatsapp.agent.memory import estimate_tokens, fit, recall, sanitize, split_turns
from eki_whatsapp.store import MemoryStore, SQLiteStore

from .conftest import ScriptedModel, call, completion, sent


@tool
def remember_color(color: str) -> str:
    """Note the user's favourite colour."""
    return f"noted {color}"


def turn(i: int, with_tool: bool = True) -> list[dict]:
    items: list[dict] = [{"role": "user", "content": f"u{i}"}]
    if with_tool:
        items += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call("t", {"i": i}, f"c{i}a"), call("t", {}, f"c{i}b")],
            },
            {"role": "tool", "tool_call_id": f"c{i}a", "content": "r" * 400},
            {"role": "tool", "tool_call_id": f"c{i}b", "content": "r"},
        ]
    items.append({"role": "assistant", "content": f"a{i}"})
    return items


def assert_pairs_intact(items: list[dict]) -> None:
    assert items[0]["role"] == "user"
    calls = [c["id"] for m in items for c in m.get("tool_calls") or []]
    results = [m["tool_call_id"] for m in items if m["role"] == "tool"]
    assert calls == results


def test_trim_by_turns_keeps_whole_turns() -> None:
    history = [m for i in range(5) for m in turn(i, with_tool=i % 2 == 0)]
    kept = trim(history, max_turns=2)
    assert [t[0]["content"] for t in split_turns(kept)] == ["u3", "u4"]
    assert_pairs_intact(kept)


def test_trim_by_tokens_never_separates_a_call_from_its_result() -> None:
    history = [m for i in range(6) for m in turn(i)]
    for budget in range(0, 1200, 37):
        kept = trim(history, max_tokens=budget)
        assert kept, "the newest turn is always kept"
        assert_pairs_intact(kept)
        assert kept[-1] == {"role": "assistant", "content": "a5"}


def test_sanitize_repairs_a_history_cut_in_the_middle_of_a_tool_round() -> None:
    broken = [
        {"role": "tool", "tool_call_id": "orphan", "content": "x"},
        *turn(1),
        {"role": "user", "content": "u2"},
        {"role": "assistant", "content": "let me check", "tool_calls": [call("t", {}, "c2")]},
    ]
    clean = sanitize(broken)
    assert clean[: len(turn(1))] == turn(1)
    assert clean[len(turn(1)) :] == [
        {"role": "user", "content": "u2"},
        {"role": "assistant", "content": "let me check"},
    ]


@pytest.mark.asyncio
async def test_each_user_sees_only_their_own_history(openai_api, client, store) -> None:
    route = openai_api.post("/chat/completions").mock(
        side_effect=[
            completion(tool_calls=[call("remember_color", {"color": "green"}, "c1")]),
            completion("Green, noted."),
            completion("Hello Bob."),
            completion("Your favourite colour is green."),
            completion("I don't know your colour yet."),
        ]
    )
    agent = Agent("x", [remember_color], client=client, store=store)

    await agent.respond("alice", "My favourite colour is green")
    await agent.respond("bob", "Hi, I'm Bob")
    await agent.respond("alice", "What is my colour?")
    await agent.respond("bob", "What is my colour?")

    alice_request = json.dumps(sent(route, 3)["messages"])
    bob_request = json.dumps(sent(route, 4)["messages"])
    assert "green" in alice_request and "Bob" not in alice_request
    assert "green" not in bob_request and "Hi, I'm Bob" in bob_request
    assert [m["role"] for m in sent(route, 3)["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert agent.history("alice")[-1] == {"role": "assistant", "content": "Your favourite colour is green."}
    agent.forget("alice")
    assert agent.history("alice") == []
    assert agent.history("bob")


@pytest.mark.asyncio
async def test_memory_budget_is_applied_when_saving_and_survives_a_restart(tmp_path: Path) -> None:
    db = SQLiteStore(tmp_path / "agent.sqlite3")
    model = ScriptedModel(
        lambda messages: (
            ToolCall("c" + str(len(messages)), "remember_color", '{"color": "blue"}')
            if messages[-1]["role"] == "user"
            else "ok"
        )
    )
    agent = Agent("x", [remember_color], model=model, store=db, memory_turns=2)
    for i in range(4):
        await agent.respond("carol", f"message {i}")
    db.close()

    reopened = SQLiteStore(tmp_path / "agent.sqlite3")
    history = Agent("x", [remember_color], model=model, store=reopened, memory_turns=2).history("carol")
    reopened.close()
    assert [m["content"] for m in history if m["role"] == "user"] == ["message 2", "message 3"]
    assert_pairs_intact(history)
    # the model saw at most two earlier turns plus the new message
    assert sum(1 for m in model.requests[-2] if m["role"] == "user") == 3


@pytest.mark.asyncio
async def test_one_run_per_user_and_messages_meanwhile_are_merged(store) -> None:
    model = ScriptedModel(hold=True)
    agent = Agent("x", model=model, store=store)

    first = asyncio.create_task(agent.respond("dave", "one"))
    await model.entered.wait()
    second = asyncio.create_task(agent.respond("dave", "two"))
    third = asyncio.create_task(agent.respond("dave", "three"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert model.in_flight == 1  # the others wait for the first turn
    model.release.set()
    r1, r2, r3 = await asyncio.gather(first, second, third)

    assert len(model.requests) == 2
    assert model.requests[1][-1] == {"role": "user", "content": "two\nthree"}
    assert model.max_in_flight == 1
    assert (r1.text, r2.text) == ("echo: one", "echo: two\nthree")
    assert (r1.merged, r2.merged, r3.merged) == (False, False, True)
    assert r3.turn_id == r2.turn_id
    users = [m["content"] for m in agent.history("dave") if m["role"] == "user"]
    assert users == ["one", "two\nthree"]


@pytest.mark.asyncio
async def test_without_merging_queued_messages_run_one_by_one_in_order(store) -> None:
    model = ScriptedModel(hold=True)
    agent = Agent("x", model=model, store=store, merge_pending=False)

    tasks = [asyncio.create_task(agent.respond("erin", "one"))]
    await model.entered.wait()
    tasks += [asyncio.create_task(agent.respond("erin", w)) for w in ("two", "three")]
    for _ in range(5):
        await asyncio.sleep(0)
    model.release.set()
    replies = await asyncio.gather(*tasks)

    assert [r.text for r in replies] == ["echo: one", "echo: two", "echo: three"]
    assert [r[-1]["content"] for r in model.requests] == ["one", "two", "three"]
    assert model.max_in_flight == 1


@pytest.mark.asyncio
async def test_different_users_run_in_parallel_under_the_global_cap(store) -> None:
    model = ScriptedModel(hold=True)
    agent = Agent("x", model=model, store=store, max_concurrent_calls=2)

    tasks = [asyncio.create_task(agent.respond(f"user{i}", f"hi {i}")) for i in range(5)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert model.in_flight == 2  # two users at once, the rest wait for a slot
    model.release.set()
    replies = await asyncio.gather(*tasks)

    assert model.max_in_flight == 2
    assert [r.text for r in replies] == [f"echo: hi {i}" for i in range(5)]


@pytest.mark.asyncio
async def test_identical_queued_messages_are_each_answered_without_merging(store) -> None:
    model = ScriptedModel(hold=True)
    agent = Agent("x", model=model, store=store, merge_pending=False)

    tasks = [asyncio.create_task(agent.respond("ivan", "hi"))]
    await model.entered.wait()
    tasks += [asyncio.create_task(agent.respond("ivan", "hi")) for _ in range(2)]
    for _ in range(5):
        await asyncio.sleep(0)
    model.release.set()
    replies = await asyncio.gather(*tasks)

    assert len(model.requests) == 3
    assert len({r.turn_id for r in replies}) == 3 and not any(r.merged for r in replies)


def test_respond_sync_runs_a_turn_from_sync_code(store) -> None:
    reply = Agent("x", model=ScriptedModel(), store=store).respond_sync("judy", "hello")
    assert reply.text == "echo: hello"


def test_recall_keeps_what_trim_keeps_of_the_repaired_history() -> None:
    broken = [
        {"role": "tool", "tool_call_id": "orphan", "content": "x"},
        *[m for i in range(8) for m in turn(i, with_tool=i % 3 != 0)],
        {"role": "user", "content": "u9"},
        {"role": "assistant", "content": "let me check", "tool_calls": [call("t", {}, "c9")]},
    ]
    for max_turns in (None, 0, 1, 3, 20):
        for max_tokens in (None, 0, 150, 400, 10_000):
            kept = recall(broken, max_turns=max_turns, max_tokens=max_tokens)
            assert kept.messages() == trim(sanitize(broken), max_turns=max_turns, max_tokens=max_tokens)
            assert kept.sizes == [sum(estimate_tokens(m) for m in t) for t in kept.turns]


def test_a_conversation_trims_and_fits_as_trim_and_fit_do() -> None:
    history = [m for i in range(6) for m in turn(i, with_tool=i % 2 == 0)]
    conversation = recall(history)
    for budget in range(0, 1200, 37):
        assert conversation.newest(budget) == fit(history, budget)
        for max_turns in (None, 2, 4):
            kept = conversation.trimmed(max_turns=max_turns, max_tokens=budget)
            assert kept.messages() == trim(history, max_turns=max_turns, max_tokens=budget)
    grown = conversation.extended(turn(6))
    assert grown.messages() == [*history, *turn(6)] and grown.tokens == recall(grown.messages()).tokens


def tool_turns(model_messages: list[dict]) -> ToolCall | str:
    """A scripted model: a tool call for each new user message, then an answer."""
    last = model_messages[-1]
    if last["role"] == "user":
        return ToolCall("c" + str(len(model_messages)), "remember_color", '{"color": "blue"}')
    return "ok ü"  # not ASCII: stored as is by json.dumps and by SQLite's JSON functions alike


@pytest.mark.asyncio
async def test_a_history_saved_by_appending_to_sqlite_is_the_one_written_whole(tmp_path: Path) -> None:
    db = SQLiteStore(tmp_path / "agent.sqlite3")
    memory = MemoryStore()  # no append_memory: the whole history is written every turn
    agents = [
        Agent("x", [remember_color], model=ScriptedModel(tool_turns), store=s, memory_turns=3)
        for s in (db, memory)
    ]
    for i in range(6):
        for agent in agents:
            await agent.respond("dora", f"message {i}")
        assert agents[0].history("dora") == agents[1].history("dora")
    assert [m["content"] for m in agents[0].history("dora") if m["role"] == "user"] == [
        "message 3",
        "message 4",
        "message 5",
    ]
    db.close()


@pytest.mark.asyncio
async def test_a_history_changed_in_the_store_between_turns_is_the_one_sent(tmp_path: Path) -> None:
    db = SQLiteStore(tmp_path / "agent.sqlite3")
    model = ScriptedModel(tool_turns)
    agent = Agent("x", [remember_color], model=model, store=db)
    await agent.respond("erin", "first")
    # another process (or an admin) rewrites the history meanwhile
    db.save_memory(agent.memory_key("erin"), turn(7, with_tool=False))
    await agent.respond("erin", "second")

    assert [m["content"] for m in model.requests[-2] if m["role"] == "user"] == ["u7", "second"]
    assert [m["content"] for m in agent.history("erin") if m["role"] == "user"] == ["u7", "second"]
    db.close()


def test_sqlite_append_memory_edits_the_stored_list_only_when_it_is_as_read(tmp_path: Path) -> None:
    db = SQLiteStore(tmp_path / "store.sqlite3")
    assert db.memory_version("k") is None
    assert not db.append_memory("k", [{"n": 1}], drop=0, version="1970 0"), "no row: nothing to append to"
    db.save_memory("k", [{"n": 1}, {"n": 2}, {"n": 3}])
    read = db.memory_version("k")
    assert read is not None

    assert db.append_memory("k", [{"n": 4, "t": "é"}, {"n": 5}], drop=2, version=read)
    assert db.load_memory("k") == [{"n": 3}, {"n": 4, "t": "é"}, {"n": 5}]
    assert db.memory_version("k") != read
    assert not db.append_memory("k", [{"n": 6}], drop=1, version=read), "changed since it was read"
    assert db.load_memory("k") == [{"n": 3}, {"n": 4, "t": "é"}, {"n": 5}]
    assert db.append_memory("k", [], drop=3, version=str(db.memory_version("k")))
    assert db.load_memory("k") == []
    db.close()


@pytest.mark.asyncio
async def test_a_history_written_elsewhere_during_a_turn_that_keeps_nothing_is_the_one_sent(
    tmp_path: Path,
) -> None:
    db = SQLiteStore(tmp_path / "agent.sqlite3")
    calls = {"n": 0}

    def answer(messages: list[dict]) -> ModelResponse | str:
        calls["n"] += 1
        if calls["n"] == 2:  # another process answers the same user meanwhile; this turn is refused
            db.save_memory(agent.memory_key("finn"), turn(8, with_tool=False))
            return ModelResponse(None, stop="refusal", refusal="no")
        return "ok"

    model = ScriptedModel(answer)
    agent = Agent("x", [], model=model, store=db)
    await agent.respond("finn", "first")
    refused = await agent.respond("finn", "second")
    await agent.respond("finn", "third")

    assert refused.fallback == "refused"
    assert [m["content"] for m in model.requests[-1] if m["role"] == "user"] == ["u8", "third"]
    db.close()
