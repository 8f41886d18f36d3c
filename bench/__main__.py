"""Run every benchmark: `.venv/bin/python -m bench [--quick]`."""

import sys

from bench import chat_eval, chat_stream, foundation, mcp, rag, sandbox, slides, tts

if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]
    foundation.main()
    sys.argv = [sys.argv[0], *(["--quick"] if quick else [])]
    chat_stream.main()
    chat_eval.main()
    sandbox.run(sys.argv[1:])
    rag.main()
    mcp.main()
    tts.main()
    slides.main()
