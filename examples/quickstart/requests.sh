#!/bin/sh
# requests.sh - every route of the quickstart API, and the errors a client
# sees, with curl.  Start the server first (make run), then:
#   sh examples/quickstart/requests.sh            (or BASE=http://host:port sh ...)
set -u
BASE=${BASE:-http://localhost:${PORT:-8080}}
J='Content-Type: application/json'
run() { echo; echo "\$ curl $*"; curl -s -w '\n-> %{http_code}\n' "$@"; }
tag=$(date +%s)

echo "== users"
run -X POST "$BASE/users" -H "$J" -d "{\"name\":\"Ada\",\"email\":\"ada.$tag@example.com\"}"
id=$(curl -s "$BASE/users?email=ada.$tag%40example.com" | sed -n 's/.*"items":\[{"id":\([0-9]*\).*/\1/p')
run "$BASE/users/$id"
run "$BASE/users?limit=5&sort=name"
run -X PATCH "$BASE/users/$id" -H "$J" -d '{"name":"Ada Lovelace"}'
run -X PUT "$BASE/users/$id" -H "$J" -d "{\"name\":\"Ada L\",\"email\":\"ada.$tag@example.com\"}"

echo "== products"
run -X POST "$BASE/products" -H "$J" \
    -d "{\"name\":\"Lamp\",\"sku\":\"LAMP-$tag\",\"price\":19.99,\"owner_id\":$id,\"description\":\"bright\"}"
pid=$(curl -s "$BASE/products?owner_id=$id" | sed -n 's/.*"items":\[{"id":\([0-9]*\).*/\1/p')
run "$BASE/products/$pid"
run "$BASE/products?owner_id=$id&min_price=10&max_price=50&sort=-price"
run -X PATCH "$BASE/products/$pid" -H "$J" -d '{"description":null,"price":17.5}'
run -X PUT "$BASE/products/$pid" -H "$J" \
    -d "{\"name\":\"Lamp 2\",\"sku\":\"LAMP-$tag\",\"price\":20,\"owner_id\":$id}"

echo "== errors"
run -X POST "$BASE/users" -H "$J" -d "{\"name\":\"Ada\",\"email\":\"ada.$tag@example.com\"}"  # 409
run -X POST "$BASE/users" -H "$J" -d '{"name":"","email":"nope","admin":true}'              # 422
run -X POST "$BASE/users" -H "$J" -d '{"name":'                                             # 400
run -X POST "$BASE/users" -H 'Content-Type: text/plain' -d 'hi'                             # 415
run "$BASE/users/abc"                                                                       # 422
run "$BASE/users/999999999"                                                                 # 404
run "$BASE/users?limit=1000"                                                                # 422
run -X POST "$BASE/products" -H "$J" -d '{"name":"X","sku":"X-1","price":1.001,"owner_id":1}' # 422
run -X POST "$BASE/products" -H "$J" -d '{"name":"X","sku":"X-1","price":1,"owner_id":999999}' # 409
run -X POST "$BASE/users/1" -H "$J" -d "{}"                                        # 405

echo "== clean up"
run -X DELETE "$BASE/products/$pid"
run -X DELETE "$BASE/users/$id"
run "$BASE/health"
