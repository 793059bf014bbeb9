import sys

from immutable_deploy.schema import main

sys.exit(main(sys.argv[1:]))
