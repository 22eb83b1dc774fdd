-- POST the one JSON body in the file $BODY.
local f = assert(io.open(assert(os.getenv("BODY"), "set BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
