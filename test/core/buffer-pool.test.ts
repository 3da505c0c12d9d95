import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from '../../src/core/buffer-pool.ts';
import { ErrorCode } from '../../src/errors.ts';

test('hands out fixed, distinct buffers up to capacity, then refuses', () => {
  const pool = new BufferPool(1024, 3);
  const a = pool.acquire();
  const b = pool.acquire();
  const c = pool.acquire();
  for (const buf of [a, b, c]) assert.equal(buf.length, 1024);
  a.fill(1);
  b.fill(2);
  assert.equal(a[1023], 1, 'buffers do not overlap');
  assert.equal(pool.inUse, 3);
  assert.throws(() => pool.acquire(), { code: ErrorCode.POOL_EXHAUSTED });
  pool.release(b);
  assert.equal(pool.acquire(), b, 'LIFO: the last one back is the next one out');
  assert.equal(pool.highWater, 3);
});

test('a double release or a stranger is refused', () => {
  const pool = new BufferPool(1024, 2);
  const a = pool.acquire();
  pool.release(a);
  assert.throws(() => pool.release(a), { code: ErrorCode.POOL_MISUSE });
  assert.throws(() => pool.release(Buffer.alloc(1024)), { code: ErrorCode.POOL_MISUSE });
});
