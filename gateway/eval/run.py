"""`floorgate eval run`: every ticket to every candidate, through the gateway's own upstream
layer (transports, retries), calibration contract and classifier, but on a private Failover
whose outcomes go nowhere: evaluation traffic never reaches production metrics, the ledger,
health or gates. Each answer is committed as it arrives, so a rerun does only what is missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.calibration import translate_completion, with_contract
from gateway.classify import Verdict, classify_completion
from gateway.errors import GatewayError
from gateway.eval.candidates import Candidate
from gateway.eval.checks import run_check
from gateway.eval.results import CheckStatus, Result, Results
from gateway.eval.tickets import LoadedTicket, TicketSet
from gateway.pricing import PriceTable
from gateway.upstream.base import UpstreamError
from gateway.upstream.failover import Failover
from gateway.upstream.transports import Transports

EVAL_ROUTE = "eval"  # what the private Failover names the route; it is never recorded
Progress = Callable[[int, int, int], None]  # (done, total, errors)


@dataclass(frozen=True, slots=True)
class Job:
    ticket: LoadedTicket
    candidate: Candidate
    sample: int


@dataclass(slots=True)
class Summary:
    total: int  # every (ticket, candidate, sample)
    skipped: int  # already answered by an earlier run
    answered: int = 0
    errors: int = 0


def _ignore(target: Any, error: UpstreamError | None, fallback: str | None) -> None:
    """The private Failover's outcome sink: production health and metrics never hear of it."""


@dataclass
class Runner:
    results: Results
    max_tokens: int | None = None
    run_checks: bool = False
    transports: Transports | None = None
    prices: PriceTable | None = None

    async def run(
        self,
        tickets: TicketSet,
        candidates: list[Candidate],
        repeat: int = 1,
        concurrency: int = 4,
        progress: Progress | None = None,
    ) -> Summary:
        self.results.bind(tickets)
        done = self.results.finished()
        jobs = [Job(t, c, s) for c in candidates for t in tickets.tickets
                for s in range(1, repeat + 1)]  # fmt: skip
        todo = [j for j in jobs if (j.ticket.id, j.candidate.name, j.sample) not in done]
        summary = Summary(total=len(jobs), skipped=len(jobs) - len(todo))
        transports = self.transports or Transports()
        failover = Failover(transports.for_target, _ignore)
        if self.prices is None:
            self.prices = PriceTable()
            await asyncio.to_thread(self.prices.load)
        limit = asyncio.Semaphore(concurrency)

        async def one(job: Job) -> None:
            async with limit:
                result = await self._answer(failover, job)
            self.results.record(result)  # committed now: a kill after this loses nothing
            summary.answered += result.status == "ok"
            summary.errors += result.status == "error"
            if progress:
                progress(summary.skipped + summary.answered + summary.errors, len(jobs),
                         summary.errors)  # fmt: skip

        try:
            if progress:
                progress(summary.skipped, len(jobs), 0)
            await asyncio.gather(*(one(j) for j in todo))
        finally:
            if self.transports is None:
                await transports.close()
        return summary

    def body(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {"model": job.candidate.model, "messages": list(job.ticket.messages)}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return with_contract(body) if job.candidate.contract else body

    async def _answer(self, failover: Failover, job: Job) -> Result:
        target = job.candidate.target
        if not target.usable:
            return _failed(job, f"{', '.join(target.missing_env)} not set in the environment")
        started = time.perf_counter()
        try:
            _, reply = await failover.complete(EVAL_ROUTE, [target], self.body(job))
        except GatewayError as err:
            return _failed(job, err.message)
        latency = time.perf_counter() - started
        verdict = classify_completion(reply.data)  # before translation hides the tools
        translate_completion(reply.data)
        output = _text(reply.data)
        check = None
        if self.run_checks and job.ticket.check is not None:
            check = await run_check(job.ticket.check, output)
        return self._result(job, verdict, output, latency, reply.data, check)

    def _result(
        self,
        job: Job,
        verdict: Verdict,
        output: str,
        latency: float,
        data: dict[str, Any],
        check: tuple[CheckStatus, str] | None,
    ) -> Result:
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        cost = None
        if self.prices is not None and isinstance(prompt, int) and isinstance(completion, int):
            cost = self.prices.cost(job.candidate.target.spec, prompt, completion)
        return Result(
            job.ticket.id, job.candidate.name, job.sample, job.candidate.model,
            job.candidate.target.spec.model, job.candidate.contract, "ok", output, verdict.label,
            verdict.kind, verdict.source,
            verdict.evidence, latency, prompt, completion, cost, None,
            check[0] if check else None, check[1] if check else None,
            time.time(),
        )  # fmt: skip


def _text(data: dict[str, Any]) -> str:
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") or {}
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _failed(job: Job, error: str) -> Result:
    c = job.candidate
    return Result(
        ticket=job.ticket.id, candidate=c.name, sample=job.sample, model=c.model,
        upstream_model=c.target.spec.model, contract=c.contract, status="error", output="",
        label=None, kind=None, source=None, evidence="", latency_s=None, prompt_tokens=None,
        completion_tokens=None, cost_usd=None, error=error, check_status=None, check_output=None,
        finished_at=time.time(),
    )  # fmt: skip
