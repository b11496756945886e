--[[
  One ARM request budget (a subscription's reads or writes) shared by every worker (arm-budget.ts): a
  token bucket on Redis' own clock, in which a caller reserves the next slot instead of polling. `take`
  spends a token, letting the balance go below zero, and answers how long the caller waits for its slot
  (0: go now), so callers leave one by one at the refill rate. `observe` brings the bucket down to what
  ARM says is left (x-ms-ratelimit-remaining-subscription-*), and after a 429 pushes every later slot
  past its Retry-After.

  KEYS[1] the bucket (hash: tokens, at)
  ARGV[1] capacity (burst)   ARGV[2] refill per second   ARGV[3] 'take' or 'observe'
  ARGV[4] observe: tokens ARM says are left, or ''   ARGV[5] observe: Retry-After in ms, or ''
  ARGV[6] how long an idle bucket is kept (ms)

  Returns {wait in ms, Redis' time in ms}: the slot is their sum.
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if ARGV[3] == 'take' then
  tokens = tokens - 1
  if tokens < 0 then wait = math.ceil(-tokens * 1000 / rate) end
else
  if ARGV[4] ~= '' then tokens = math.min(tokens, tonumber(ARGV[4])) end
  if ARGV[5] ~= '' then tokens = math.min(tokens, -tonumber(ARGV[5]) * rate / 1000) end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {wait, now}
