"""Run every benchmark: `.venv/bin/python -m bench`."""

import asyncio
import sys

from bench import chat_stream, foundation, sandbox

if __name__ == "__main__":
    foundation.main()
    sys.argv = sys.argv[:1]
    chat_stream.main()
    asyncio.run(sandbox.main())
