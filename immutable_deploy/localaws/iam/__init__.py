"""IAM proven by the tests: every AWS call a Lambda function makes on the local AWS is turned into
the authorization requests AWS evaluates (:mod:`.catalogue`), and each is evaluated against the
function's synthesized role policies (:mod:`.evaluator`) by :mod:`.enforce`; :mod:`.model` holds
the request and the decision."""
