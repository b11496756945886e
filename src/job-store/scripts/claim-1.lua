--[[
  The worker's side of cancel (cancel.ts): right before an Azure write (or the end of a job), refuses
  when a cancel was asked for, and otherwise records what is under way, after which cancel answers 409.

  KEYS[1] the job's control hash ({prefix}:jobs:{id}:control)
  ARGV[1] what is under way: the writing step, or Succeeded / Failed
  ARGV[2] how long the control record is kept (ms)

  Returns {'canceled', <cancel record JSON>} or {'ok', ''}.
]]
local cancel = redis.call('HGET', KEYS[1], 'cancel')
if cancel then return {'canceled', cancel} end
redis.call('HSET', KEYS[1], 'committed', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'ok', ''}
