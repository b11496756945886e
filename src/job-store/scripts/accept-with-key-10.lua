--[[
  Accepts a change with an Idempotency-Key in one script: claims the key's record, then BullMQ's own
  addStandardJob (its text, inserted below when the script is loaded: scripts.ts) adds the job.

  KEYS[1..9], ARGV[1..3]: BullMQ's addStandardJob's, as BullMQ builds them.
  KEYS[10]: the Idempotency-Key's record.
  ARGV[4]: the record to claim it with (it names the job about to be added); ARGV[5]: its lifetime (s);
  ARGV[6]: the job's id.

  Returns {record} when an earlier request holds the key (nothing is added); otherwise what BullMQ's add
  returns: the job's id, or the id of the FHIR service's unfinished job (deduplication), and then the
  claim is given back in the same step, so a retry is judged afresh.
]]
local earlier = redis.call("SET", KEYS[10], ARGV[4], "EX", ARGV[5], "NX", "GET")
if earlier then return {earlier} end

local function bullmqAddStandardJob()
--@bullmq addStandardJob
end

local added = bullmqAddStandardJob()
if added ~= ARGV[6] then redis.call("DEL", KEYS[10]) end
return added
