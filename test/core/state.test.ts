import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLegal, State, StateCounters, TRANSITIONS, transition } from '../../src/core/state.ts';
import { ErrorCode } from '../../src/errors.ts';

const ALL = Object.values(State);

test('every move outside the table is rejected and counted, the state unchanged', () => {
  for (const from of ALL) {
    for (const to of ALL) {
      if (from === to) continue;
      const counters = new StateCounters(false);
      const subject = { state: from };
      const ok = transition(subject, to, counters);
      const legal = TRANSITIONS[from].includes(to);
      assert.equal(ok, legal, `${from} -> ${to}`);
      assert.equal(isLegal(from, to), legal);
      assert.equal(subject.state, legal ? to : from);
      assert.equal(counters.illegal, legal ? 0 : 1);
    }
  }
});

test('strict counters throw SWITCHYARD_ERR_ILLEGAL_TRANSITION on an illegal move', () => {
  const counters = new StateCounters(true);
  const subject = { state: State.CLOSED as State };
  assert.throws(() => transition(subject, State.READING, counters), {
    code: ErrorCode.ILLEGAL_TRANSITION,
  });
  assert.equal(subject.state, State.CLOSED);
  // The illegal moves a careless implementation would make.
  for (const [from, to] of [
    [State.CONNECTING, State.READING],
    [State.HALF_CLOSED, State.READING],
    [State.CLOSING, State.READING],
    [State.CLOSED, State.CLOSING],
  ] as const) {
    assert.throws(() => transition({ state: from }, to, counters), {
      code: ErrorCode.ILLEGAL_TRANSITION,
    });
  }
});

test('counters follow a pair through its life and end at zero', () => {
  const counters = new StateCounters(true);
  const s = { state: State.CLOSED as State };
  const path = [
    State.CONNECTING,
    State.CONNECTED,
    State.READING,
    State.WRITING,
    State.READING,
    State.HALF_CLOSED,
    State.WRITING,
    State.HALF_CLOSED,
    State.CLOSING,
  ];
  for (const to of path) {
    transition(s, to, counters);
    assert.equal(counters.count[to], 1, `${to} counted`);
    const total = Object.values(counters.count).reduce((a, b) => a + b, 0);
    assert.equal(total, 1, 'exactly one state counted');
  }
  transition(s, State.CLOSED, counters);
  assert.deepEqual(
    Object.values(counters.count),
    ALL.map(() => 0),
  );
});

test('every state can reach CLOSED', () => {
  for (const from of ALL) {
    const seen = new Set<State>([from]);
    const todo = [from];
    while (todo.length) {
      for (const to of TRANSITIONS[todo.pop() as State]) {
        if (!seen.has(to)) {
          seen.add(to);
          todo.push(to);
        }
      }
    }
    assert.ok(seen.has(State.CLOSED), `${from} can reach CLOSED`);
  }
});

test('a queued pair can only go on to connect, or close; CONNECTING may queue', () => {
  assert.deepEqual([...TRANSITIONS[State.QUEUED]].sort(), [State.CLOSING, State.CONNECTING].sort());
  assert.ok(isLegal(State.CONNECTING, State.QUEUED));
  for (const to of [
    State.CONNECTED,
    State.READING,
    State.WRITING,
    State.HALF_CLOSED,
    State.CLOSED,
  ]) {
    assert.equal(isLegal(State.QUEUED, to), false, `QUEUED -> ${to}`);
  }
  const counters = new StateCounters(true);
  const s = { state: State.CLOSED as State };
  for (const to of [State.CONNECTING, State.QUEUED, State.CONNECTING, State.CONNECTED]) {
    transition(s, to, counters);
  }
  assert.equal(counters.count.QUEUED, 0);
  assert.equal(counters.count.CONNECTED, 1);
});
