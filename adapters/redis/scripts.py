"""Lua scripts that make each work-queue step one atomic server-side operation."""

from __future__ import annotations

# Takes over the oldest entry of the group idle for at least ARGV[3] ms and reports how many
# times it has now been delivered, in one step, so the count cannot drift under a race.
# KEYS[1] stream; ARGV group, consumer, min idle ms.  Returns {id, fields, deliveries} or nil.
CLAIM_IDLE = """
local cursor = '0-0'
repeat
  local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor,
                             'COUNT', 1)
  cursor = claimed[1]
  local entry = claimed[2][1]
  if entry then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    return {entry[1], entry[2], pending[1][4]}
  end
until cursor == '0-0'
return false
"""

# Settles one delivered entry.  ACTION 'ack' acknowledges; 'dead' copies it to the dead-letter
# stream, then acknowledges; 'retry' keeps it pending but marks it idle for ARGV[6] ms, so the
# next claim by any consumer takes it at once.  An entry is deleted from its stream once every
# group bound to the stream is done with it, so streams shared by several queues stay correct.
# KEYS[1] stream, KEYS[2] dead-letter stream;
# ARGV group, consumer, id, action, reason, idle ms, routing key, body.
# Returns the action taken, 'gone' if the entry was already settled, or 'taken' if another
# consumer took it over (then only 'ack' still applies: the work is done either way).
SETTLE = """
local stream, dead = KEYS[1], KEYS[2]
local group, consumer, id, action = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local pending = redis.call('XPENDING', stream, group, id, id, 1)[1]
if not pending then
  return 'gone'
end
if action ~= 'ack' and pending[2] ~= consumer then
  return 'taken'
end
if action == 'retry' then
  redis.call('XCLAIM', stream, group, consumer, 0, id, 'IDLE', ARGV[6], 'JUSTID')
  return 'retry'
end
if action == 'dead' then
  redis.call('XADD', dead, '*', 'routing_key', ARGV[7], 'body', ARGV[8], 'reason', ARGV[5],
             'stream', stream, 'entry', id, 'deliveries', pending[4])
end
redis.call('XACK', stream, group, id)

local function parse(entry_id)
  local ms, seq = string.match(entry_id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local id_ms, id_seq = parse(id)
for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local fields = {}
  for i = 1, #info, 2 do
    fields[info[i]] = info[i + 1]
  end
  local last_ms, last_seq = parse(fields['last-delivered-id'])
  if last_ms < id_ms or (last_ms == id_ms and last_seq < id_seq) then
    return action
  end
  if redis.call('XPENDING', stream, fields['name'], id, id, 1)[1] then
    return action
  end
end
redis.call('XDEL', stream, id)
return action
"""
