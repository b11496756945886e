--[[
  An approval's decision (approval.ts), atomic: the first decision on a Pending approval wins; every later
  one (a second approver, the worker's expiry, a reject racing an approve) is told what was decided.
  The decision is a field of the BullMQ job hash (`approval`), so a status read (one HGETALL) sees it.

  KEYS[1] the BullMQ job hash
  ARGV[1] the decision (JSON: state, decidedBy, decidedById, decidedDateTime, comment)

  Returns {'ok', ''}, {'missing', ''}, {'finished', ''} or {'decided', <the decision that won>}.
]]
local jobKey = KEYS[1]
if redis.call('EXISTS', jobKey) == 0 then return {'missing', ''} end
if redis.call('HEXISTS', jobKey, 'finishedOn') == 1 then return {'finished', ''} end
local current = redis.call('HGET', jobKey, 'approval')
if current then return {'decided', current} end
redis.call('HSET', jobKey, 'approval', ARGV[1])
return {'ok', ''}
