"""Chat quality of the local models, measured through the app's own API: does the model call a tool when one is
needed and none otherwise, is the answer right, does any internal format leak into it, and how long it takes.

Each case is a fresh chat of one or more turns, sent to `POST /chat/stream` of a real `uvicorn main:app` with the
embedded model at temperature 0 and a fixed seed (a rerun gives the same figures). Written code is checked by
running it against a test in a sandbox of the app's own; code the model runs goes to the chat's sandbox tool.
Figures are printed, never asserted: they choose the default model (README, "Choosing the local model").

Run: `.venv/bin/python -m bench.chat_eval [--model ID ...] [--only CATEGORY ...] [--quick] [--show]`.
`--quick` runs one case of four categories on the default model (the test suite runs it so the eval keeps working).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.live_server import live_server

SEED = 1234
CATEGORIES = ("arithmetic", "datetime", "no_tool", "write_code", "run_code", "follow_up", "session", "generation")
# What an answer must never show: the router's JSON, the bracket notation history was once flattened into, or
# the wording of the tool-result message the routed loop sends.
LEAKS = re.compile(
    r"\[called |\[result:|\{\s*\"tool\"\s*:|\"arguments\"\s*:|Tool results:|returned \{|<tool_call>|tool_call_id"
    r"|Results from tools|<tool_response>",
    re.IGNORECASE,
)
CALCULATOR, CLOCK, EXEC = "calculator", "current_datetime", "sandbox_exec"
DECK, PODCAST, PROSE = "generate_deck", "generate_podcast", "write_prose"
SANDBOX_TOOLS = {EXEC, "sandbox_write_file", "sandbox_read_file"}


# -- checks ---------------------------------------------------------------------------------------------------------

Check = Callable[[str], bool]


def _numbers(text: str) -> list[float]:
    """Every number in a text, thousands separators and markdown emphasis removed ("7,006,652" is 7006652)."""
    plain = re.sub(r"(?<=\d)[,\u202f\u00a0 ](?=\d{3}\b)", "", text.replace("*", ""))
    return [float(match) for match in re.findall(r"-?\d+(?:\.\d+)?", plain)]


def number(expected: float, places: int = 2) -> Check:
    """The expected number appears in the answer (rounded to ``places`` when it is not whole)."""

    def check(answer: str) -> bool:
        return any(abs(found - expected) < 0.5 * 10**-places for found in _numbers(answer))

    return check


def words(*any_of: str) -> Check:
    def check(answer: str) -> bool:
        lowered = answer.lower()
        return any(word.lower() in lowered for word in any_of)

    return check


def anything(answer: str) -> bool:
    return len(answer.strip()) > 0


def today(fmt: str) -> Check:
    """Today's date in UTC, formatted when checked (the run may cross midnight only in theory)."""

    def check(answer: str) -> bool:
        return datetime.now(UTC).strftime(fmt).lower() in answer.lower()

    return check


@dataclass
class Ask:
    """One user turn: what it asks, which tools count as the right route (empty: none), and how the answer is
    checked. ``tool_optional``: either route is right (a trivial sum may be done in the head)."""

    prompt: str
    tools: set[str]
    check: Check = anything
    tool_optional: bool = False
    code_test: str | None = None  # a written function: this test runs after the answer's code in a sandbox


@dataclass
class Case:
    category: str
    turns: list[Ask]


def arithmetic(prompt: str, expected: float, *, places: int = 2, optional: bool = False) -> Case:
    return Case("arithmetic", [Ask(prompt, {CALCULATOR, EXEC}, number(expected, places), tool_optional=optional)])


def write(prompt: str, test: str) -> Case:
    return Case("write_code", [Ask(prompt, set(), anything, tool_optional=True, code_test=test)])


# fmt: off
CASES: list[Case] = [
    arithmetic("What is 2+2?", 4, optional=True),
    arithmetic("What is 1234 * 5678?", 7006652),
    arithmetic("Calculate 987654 + 123456", 1111110),
    arithmetic("What's 15% of 2340?", 351),
    arithmetic("What is the square root of 1764?", 42),
    arithmetic("How much is 2 to the power of 20?", 1048576),
    arithmetic("Divide 1000 by 8", 125),
    arithmetic("What is (45 + 55) * 3 - 17?", 283),
    arithmetic("What is 3.75 * 12.4?", 46.5),
    arithmetic("I buy 3 boxes of 24 eggs and 5 eggs break. How many eggs are left?", 67),
    arithmetic("A shirt costs $40 and is 25% off. What is the sale price?", 30),
    arithmetic("What is 123456789 * 987654321?", 121932631112635269, places=0),
    arithmetic("What is 7 factorial divided by 3?", 1680),
    arithmetic("Compute 2**31 - 1", 2147483647),
    arithmetic("What is 10 minus 3?", 7, optional=True),
    arithmetic("If I drive 150 km in 2.5 hours, what is my average speed in km/h?", 60),
    Case("datetime", [Ask("What day of the week is it today?", {CLOCK, EXEC}, today("%A"))]),
    Case("datetime", [Ask("What year is it now?", {CLOCK, EXEC}, today("%Y"))]),
    Case("datetime", [Ask("What is today's date?", {CLOCK, EXEC}, today("%Y"))]),
    Case("datetime", [Ask("What month is it?", {CLOCK, EXEC}, today("%B"))]),
    Case("datetime", [Ask("What time is it right now in UTC?", {CLOCK, EXEC}, today("%H"))]),
    Case("datetime", [Ask("Is today a weekend day?", {CLOCK, EXEC}, today("%A"))]),
    Case("no_tool", [Ask("What is the capital of France?", set(), words("Paris"))]),
    Case("no_tool", [Ask("Who wrote Romeo and Juliet?", set(), words("Shakespeare"))]),
    Case("no_tool", [Ask("What is the chemical symbol for gold?", set(), words("Au"))]),
    Case("no_tool", [Ask("Hi! How are you today?", set(), anything)]),
    Case("no_tool", [Ask("Thanks, that was helpful.", set(), anything)]),
    Case("no_tool", [Ask("Write a haiku about autumn leaves.", set(), anything)]),
    Case("no_tool", [Ask("Translate 'good morning' into Spanish.", set(), words("buenos días", "buenos dias"))]),
    Case("no_tool", [Ask("What does HTTP stand for?", set(), words("hypertext transfer protocol"))]),
    Case("no_tool", [Ask("Explain what a Python list comprehension is in two sentences.", set(),
                         words("list"))]),
    Case("no_tool", [Ask("Suggest three names for a pet cat.", set(), anything)]),
    Case("no_tool", [Ask("What is the largest planet in our solar system?", set(), words("Jupiter"))]),
    Case("no_tool", [Ask("Write a short email asking my manager for a day off on Friday.", set(), words("friday"))]),
    write("Write a python function reverse_string(s) that returns the string reversed.",
          "assert reverse_string('abc') == 'cba'\nassert reverse_string('') == ''"),
    write("Write a Python function is_palindrome(s) that returns True if s reads the same backwards, ignoring case.",
          "assert is_palindrome('Level')\nassert not is_palindrome('python')"),
    write("Write a Python function factorial(n) that returns n! for n >= 0.",
          "assert factorial(0) == 1\nassert factorial(5) == 120"),
    write("Write a Python function fibonacci(n) that returns the n-th Fibonacci number, with fibonacci(0) == 0 and "
          "fibonacci(1) == 1.", "assert fibonacci(10) == 55\nassert fibonacci(1) == 1"),
    write("Write a Python function count_vowels(s) that returns how many vowels (a, e, i, o, u) s contains.",
          "assert count_vowels('hello world') == 3\nassert count_vowels('xyz') == 0"),
    write("Write a Python function celsius_to_fahrenheit(c) that converts Celsius to Fahrenheit.",
          "assert celsius_to_fahrenheit(100) == 212\nassert celsius_to_fahrenheit(0) == 32"),
    write("Write a Python function is_prime(n) that returns True when n is a prime number.",
          "assert is_prime(7) and is_prime(2)\nassert not is_prime(1) and not is_prime(9)"),
    write("Write a Python function word_count(text) that returns a dict mapping each word to how often it occurs.",
          "assert word_count('a b a') == {'a': 2, 'b': 1}"),
    write("Write a Python function flatten(lists) that flattens a list of lists into one list.",
          "assert flatten([[1, 2], [3], []]) == [1, 2, 3]"),
    write("Write a Python function fizzbuzz(n) that returns a list of strings for 1..n: 'Fizz' for multiples of 3, "
          "'Buzz' for multiples of 5, 'FizzBuzz' for both, else the number as a string.",
          "assert fizzbuzz(5) == ['1', '2', 'Fizz', '4', 'Buzz']\nassert fizzbuzz(15)[-1] == 'FizzBuzz'"),
    Case("run_code", [Ask("Run a Python script in the sandbox that prints the sum of the squares of 1 to 100, and tell "
                          "me the result.", {EXEC}, number(338350))]),
    Case("run_code", [Ask("Use the sandbox to run `python3 --version` and tell me which Python version is installed.",
                          {EXEC}, words("python 3", "3."))]),
    Case("run_code", [Ask("Execute Python code in the sandbox to compute the md5 hex digest of the string 'hello'.",
                          {EXEC}, words("5d41402abc4b2a76b9719d911017c592"))]),
    Case("run_code", [Ask("Run a command in the sandbox that lists the files in the current directory.", {EXEC},
                          anything)]),
    Case("run_code", [Ask("Create a file notes.txt in the sandbox containing the word hello.",
                          {EXEC, "sandbox_write_file"}, anything)]),
    Case("run_code", [Ask("In the sandbox, run Python to count how many primes are below 1000.", {EXEC},
                          number(168))]),
    Case("run_code", [Ask("Run `echo $((6 * 7))` in the sandbox and tell me what it printed.", {EXEC},
                          number(42))]),
    Case("follow_up", [Ask("What is 123 * 456?", {CALCULATOR, EXEC}, number(56088)),
                       Ask("And what is that divided by 3?", {CALCULATOR, EXEC}, number(18696))]),
    Case("follow_up", [Ask("What is 25 * 4?", {CALCULATOR, EXEC}, number(100), tool_optional=True),
                       Ask("Thanks! What is the capital of Italy?", set(), words("Rome"))]),
    Case("follow_up", [Ask("What day of the week is it?", {CLOCK, EXEC}, today("%A")),
                       Ask("Great. Suggest a nice activity for that day.", set(), anything)]),
    Case("follow_up", [Ask("What is 999 * 111?", {CALCULATOR, EXEC}, number(110889)),
                       Ask("Write a Python function add(a, b) that returns a + b.", set(), anything, tool_optional=True,
                           code_test="assert add(2, 3) == 5")]),
    Case("follow_up", [Ask("Calculate 2 to the power of 10.", {CALCULATOR, EXEC}, number(1024)),
                       Ask("Now double it.", {CALCULATOR, EXEC}, number(2048), tool_optional=True)]),
    Case("follow_up", [Ask("What is 48 / 6?", {CALCULATOR, EXEC}, number(8), tool_optional=True),
                       Ask("Who painted the Mona Lisa?", set(), words("Leonardo", "da Vinci"))]),
    Case("follow_up", [Ask("Run a Python script in the sandbox that prints 2**64.", {EXEC}, number(18446744073709551616,
                           places=0)),
                       Ask("What does that number represent in computing?", set(), anything)]),
    Case("follow_up", [Ask("What is the current year?", {CLOCK, EXEC}, today("%Y")),
                       Ask("Tell me a fun fact about octopuses.", set(), anything)]),
    Case("follow_up", [Ask("What is 17 * 19?", {CALCULATOR, EXEC}, number(323)),
                       Ask("Is that number prime?", set(), words("not", "no"), tool_optional=True)]),
    Case("follow_up", [Ask("Hello!", set(), anything),
                       Ask("What is 3333 * 3?", {CALCULATOR, EXEC}, number(9999), tool_optional=True)]),
    # A newcomer's first chat: unrelated questions one after another in one session.
    Case("session", [Ask("What is 2+2?", {CALCULATOR, EXEC}, number(4), tool_optional=True),
                     Ask("Write a python function reverse_string(s) that reverses a string.", set(), anything,
                         tool_optional=True, code_test="assert reverse_string('abc') == 'cba'"),
                     Ask("What is 1234 * 5678?", {CALCULATOR, EXEC}, number(7006652)),
                     Ask("Thanks! And what is that divided by 2?", {CALCULATOR, EXEC}, number(3503326)),
                     Ask("What is the capital of France?", set(), words("Paris"))]),
    Case("session", [Ask("Hi! Who are you?", set(), anything),
                     Ask("What day of the week is it today?", {CLOCK, EXEC}, today("%A")),
                     Ask("Explain what a Python dictionary is in one sentence.", set(), words("key")),
                     Ask("How much is 15% of 80?", {CALCULATOR, EXEC}, number(12)),
                     Ask("Write a Python function square(x) that returns x squared.", set(), anything,
                         tool_optional=True, code_test="assert square(3) == 9")]),
    # Files made in the background (last: the jobs they start keep the model busy a while), and questions about
    # them that want no tool.
    Case("generation", [Ask("Make me a 5-slide presentation about volcanoes.", {DECK}, anything)]),
    Case("generation", [Ask("Create a slide deck on the history of tea.", {DECK}, anything)]),
    Case("generation", [Ask("Make a short podcast episode about black holes.", {PODCAST}, anything)]),
    Case("generation", [Ask("Write an article about coral reefs and save it as a file.", {PROSE}, anything)]),
    Case("generation", [Ask("What makes a good slide presentation? Answer in two sentences.", set(), anything)]),
    Case("generation", [Ask("What is a podcast?", set(), words("audio", "episode", "listen"))]),
]
# fmt: on
# One case of four kinds: a tool answer, a no-tool answer, written code checked in a sandbox, a follow-up.
QUICK_CASES = [next(c for c in CASES if c.category == kind and len(c.turns[0].prompt) > 12)
               for kind in ("arithmetic", "no_tool", "write_code", "follow_up")]


# -- one turn through the API ---------------------------------------------------------------------------------------


@dataclass
class TurnResult:
    category: str
    prompt: str
    answer: str = ""
    tools: list[str] = field(default_factory=list)
    routed_right: bool = False
    correct: bool = False
    leaked: bool = False
    ttft: float = float("nan")
    total: float = float("nan")
    error: str | None = None


async def stream_turn(
    http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> tuple[str, list[str], float, float, str | None, str | None]:
    """Send one turn; return answer text, tools called, TTFT, total, session id and any error."""
    started = time.perf_counter()
    text: list[str] = []
    tools: list[str] = []
    ttft, session_id, error = float("nan"), None, None
    async with http.stream("POST", "/api/v1/agent/chat/stream", json=body, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            return "", [], ttft, time.perf_counter() - started, None, f"HTTP {response.status_code}: {response.text}"
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:])
                if event == "run":
                    session_id = data.get("session_id")
                elif event == "content.delta":
                    if not text:
                        ttft = time.perf_counter() - started
                    text.append(data.get("text", ""))
                elif event == "tool_call":
                    tools.append(f"{data.get('name', '')} {data.get('arguments', '')}".strip())
                elif event == "error":
                    error = f"{data.get('code')}: {data.get('message')}"
    return "".join(text), tools, ttft, time.perf_counter() - started, session_id, error


def extract_code(answer: str) -> str:
    blocks = re.findall(r"```[a-zA-Z0-9_+-]*\n(.*?)```", answer, re.DOTALL)
    python = [block for block in blocks if "def " in block]
    return "\n\n".join(python or blocks)


class CodeChecker:
    """Runs a written function and its test in one sandbox of the eval user (never on this machine)."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self._http, self._headers = http, headers
        self._sandbox: str | None = None

    async def passes(self, code: str, test: str) -> bool:
        if not code.strip():
            return False
        if self._sandbox is None:
            created = await self._http.post("/api/v1/agent/sandboxes", json={}, headers=self._headers)
            created.raise_for_status()
            self._sandbox = created.json()["id"]
        base = f"/api/v1/agent/sandboxes/{self._sandbox}"
        script = f"{code}\n\n{test}\nprint('PASSED')\n"
        put = await self._http.put(f"{base}/files", params={"path": "check.py"}, content=script.encode(),
                                   headers=self._headers)  # fmt: skip
        put.raise_for_status()
        done = await self._http.post(f"{base}/exec", json={"command": "python3 check.py", "timeout_s": 20},
                                     headers=self._headers)  # fmt: skip
        done.raise_for_status()
        result = done.json()
        return result["exit_code"] == 0 and "PASSED" in result["stdout"]


async def run_case(
    http: httpx.AsyncClient, headers: dict[str, str], case: Case, model: str, checker: CodeChecker
) -> list[TurnResult]:
    results: list[TurnResult] = []
    session_id: str | None = None
    for ask in case.turns:
        body: dict[str, Any] = {"message": ask.prompt, "model": model}
        if session_id:
            body["session_id"] = session_id
        answer, tools, ttft, total, sid, error = await stream_turn(http, headers, body)
        session_id = session_id or sid
        result = TurnResult(case.category, ask.prompt, answer, tools, ttft=ttft, total=total, error=error)
        called = {tool.split(" ", 1)[0] for tool in tools}
        if ask.tools:
            result.routed_right = bool(called & ask.tools) or (ask.tool_optional and not called)
        else:
            result.routed_right = not called or (ask.tool_optional and not called - SANDBOX_TOOLS)
        if ask.code_test is not None:
            result.correct = await checker.passes(extract_code(answer), ask.code_test)
        else:
            result.correct = error is None and ask.check(answer)
        result.leaked = bool(LEAKS.search(answer))
        results.append(result)
    if session_id:
        await http.delete(f"/api/v1/agent/sessions/{session_id}", headers=headers)
    return results


# -- the run --------------------------------------------------------------------------------------------------------


async def signed_in(http: httpx.AsyncClient) -> dict[str, str]:
    body = {"email": "eval@example.com", "password": "correct horse battery"}
    await http.post("/api/v1/auth/register", json=body)
    token = (await http.post("/api/v1/auth/login", json=body)).json()["access_token"]
    http.cookies.clear()
    key = await http.post("/api/v1/agent/api-keys", json={"name": "eval"}, headers={"Authorization": f"Bearer {token}"})
    return {"Authorization": f"Bearer {key.json()['api_key']}"}


def median_ms(values: list[float]) -> str:
    finite = [v for v in values if v == v]
    return f"{statistics.median(finite) * 1000:.0f}" if finite else "-"


def report(model: str, results: list[TurnResult], load_s: float) -> None:
    print(f"\nmodel {model}: {len(results)} turns, model load {load_s:.1f} s (first turn, not in the times)")
    print(f"  {'category':<12} {'turns':>5} {'routing':>8} {'correct':>8} {'no leak':>8} {'TTFT ms':>8} "
          f"{'total ms':>9}")  # fmt: skip
    by_category: dict[str, list[TurnResult]] = defaultdict(list)
    for result in results:
        by_category[result.category].append(result)
    for category in [*CATEGORIES, "all"]:
        rows = results if category == "all" else by_category.get(category, [])
        if not rows:
            continue
        n = len(rows)
        print(f"  {category:<12} {n:>5} {sum(r.routed_right for r in rows) / n:>8.0%} "
              f"{sum(r.correct for r in rows) / n:>8.0%} {sum(not r.leaked for r in rows) / n:>8.0%} "
              f"{median_ms([r.ttft for r in rows]):>8} {median_ms([r.total for r in rows]):>9}")  # fmt: skip
    exact = [r for r in results if r.category == "arithmetic"]
    if exact:
        print(f"  arithmetic answers exact: {sum(r.correct for r in exact)}/{len(exact)}")
    print(f"  errors {sum(r.error is not None for r in results)}")


async def evaluate(model: str, cases: list[Case], *, show: bool) -> list[TurnResult]:
    llm = {"local": {"enabled": True, "model": model, "temperature": 0, "seed": SEED}}
    env = {"AGENT_UI_LLM": json.dumps(llm), "AGENT_UI_CREDITS__SIGNUP_GRANT": "1000000",
           "AGENT_UI_SANDBOX__MAX_LIVE_PER_USER": "50", "AGENT_UI_SANDBOX__BACKEND": "local"}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp) / "data", extra_env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=600) as http:
            headers = await signed_in(http)
            started = time.perf_counter()
            await stream_turn(http, headers, {"message": "Hi", "model": model, "tools": []})  # loads the model
            load_s = time.perf_counter() - started
            checker = CodeChecker(http, headers)
            results: list[TurnResult] = []
            for case in cases:
                for result in await run_case(http, headers, case, model, checker):
                    results.append(result)
                    if show:
                        mark = "ok " if result.correct and result.routed_right and not result.leaked else "BAD"
                        print(f"{mark} [{result.category}] {result.prompt!r} tools={result.tools} "
                              f"correct={result.correct} routed={result.routed_right} leaked={result.leaked}"
                              f"{' error=' + result.error if result.error else ''}\n    "
                              + result.answer.strip().replace("\n", "\n    ")[:600], flush=True)  # fmt: skip
            report(model, results, load_s)
            return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", help="a local model id (default: both packaged ones)")
    parser.add_argument("--only", action="append", choices=CATEGORIES)
    parser.add_argument("--quick", action="store_true", help="four cases, the default model: check that it runs")
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args()
    if args.quick:
        cases, models = QUICK_CASES, args.model or ["qwen2.5-coder-0.5b"]
    else:
        cases = [case for case in CASES if not args.only or case.category in args.only]
        models = args.model or ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    print(f"chat eval: {len(cases)} cases, {sum(len(c.turns) for c in cases)} turns, temperature 0, seed {SEED}")
    for model in models:
        asyncio.run(evaluate(model, cases, show=args.show))


if __name__ == "__main__":
    main()
