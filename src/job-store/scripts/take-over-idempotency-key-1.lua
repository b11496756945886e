--[[
  Takes over an Idempotency-Key whose request was abandoned (idempotency.ts): replaces the record only
  if it is still the one read, so of two retries racing for it exactly one wins.

  KEYS[1] the idempotency record
  ARGV[1] the record as read   ARGV[2] the new record   ARGV[3] how long it is kept (s)

  Returns 1 when taken over, 0 otherwise.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
