-- pipeline.lua - wrk sends DEPTH requests at once on each connection (HTTP pipelining).
--
--   wrk -s pipeline.lua http://127.0.0.1:PORT/plaintext -- 16
--
-- wrk writes the whole batch, then reads until it has DEPTH responses before sending the
-- next batch; it counts every response as a request, and times each one from the moment
-- the batch was written.

init = function(args)
   local depth = tonumber(args[1]) or 16
   local batch = {}
   for i = 1, depth do
      batch[i] = wrk.format()   -- GET of the URL's path, with wrk's default headers
   end
   request_batch = table.concat(batch)
end

request = function()
   return request_batch
end
