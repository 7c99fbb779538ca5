-- latency.lua - wrk prints its whole latency distribution, and can POST a body.
--
--   wrk --latency -s latency.lua http://127.0.0.1:PORT/plaintext
--   wrk --latency -s latency.lua http://127.0.0.1:PORT/echo -- 1048576
--
-- At the end, one line per percentile, "percentile P MICROSECONDS", and "percentile max
-- MICROSECONDS": --latency alone prints only four. With an argument, each request is a
-- POST of that many bytes (to /echo, which sends them back). Setting wrk.method and
-- wrk.body in init() keeps wrk's fast path: it still formats the request once per thread.

init = function(args)
   local size = tonumber(args[1])
   if size then
      wrk.method = "POST"
      wrk.body = string.rep("x", size)
      wrk.headers["Content-Type"] = "application/octet-stream"
   end
end

done = function(summary, latency, requests)
   for _, p in ipairs({ 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999 }) do
      io.write(string.format("percentile %g %d\n", p, latency:percentile(p)))
   end
   io.write(string.format("percentile max %d\n", latency.max))
end
