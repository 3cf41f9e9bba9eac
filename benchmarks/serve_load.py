"""Load on the HTTP server vs the library in a loop: 16 concurrent clients sending point prompts on cached
images to ``robosam serve`` (a real uvicorn process on loopback), against the same prompts decoded by the
library in one process, same run, same model (SAM ViT-B architecture, random weights).

    python benchmarks/serve_load.py [--duration 30] [--clients 16] [--model FOLDER] [--device cpu]

The 16 clients run in a separate load-generator process at lower CPU priority (nice 10), so on one machine
their own Python work does not take the cores from the server they measure (their CPU share is printed).
Prints throughput, p50 / p99 latency, /health latency under load and errors for the in-process loop and the
server with micro-batching off and on; the last line ends with the server / in-process throughput ratio
(server with the default micro-batching: off on CPU, on on CUDA). Targets: ratio >= 0.85, p99 < 3x p50,
/health p99 < 100 ms while loaded, zero errors.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from robosam.io import load_image
from robosam.runtime import share_cores
from robosam.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]


def random_vit_b(folder: Path) -> Path:
    """SAM ViT-B (transformers' default SamConfig) with random weights, saved as a model folder."""
    import torch
    from transformers import SamConfig, SamModel

    torch.manual_seed(0)
    SamModel(SamConfig()).eval().save_pretrained(folder)
    return folder


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def in_process(
    segmenter: Segmenter,
    images: list[np.ndarray],
    prompts: list,
    seconds: float,
    multimask: bool,
    threads: int,
):
    """The library in a loop on ``threads`` threads of this process (as many as the server's workers, so both
    get the same share of a busy machine): decode + the same JSON-ready dict (COCO RLE) the server sends."""
    embeddings = [segmenter.embed(image) for image in images]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    deadline = time.perf_counter() + seconds

    def loop(slot: int) -> None:
        index = slot
        while time.perf_counter() < deadline:
            image_index, point = prompts[index % len(prompts)]
            t0 = time.perf_counter()
            result = segmenter.decode(
                embeddings[image_index], points=[point], labels=[1], multimask=multimask
            )
            result.to_dict()
            latencies[slot].append(time.perf_counter() - t0)
            index += threads

    start = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    flat = [value for per_thread in latencies for value in per_thread]
    return len(flat) / (time.perf_counter() - start), flat


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``robosam serve`` in a subprocess on a free loopback port; always stopped on exit."""

    def __init__(self, model: str, device: str, micro_batch: str, workers: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "robosam.cli",
            "serve",
            "--model",
            model,
            "--device",
            device,
            "--port",
            str(self.port),
            "--micro-batch",
            micro_batch,
            "--max-queue",
            "256",
            "--workers",
            str(workers),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self) -> ServerProcess:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("server did not start within 300 s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def load(url: str, image_ids: list[str], prompts: list, clients: int, seconds: float, multimask: bool):
    """``clients`` threads sending prompts for ``seconds`` (then finishing the requests in flight), plus one
    polling /health every 20 ms."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    health: list[float] = []
    stop = threading.Event()

    def client(slot: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            index = slot
            while not stop.is_set():
                image_index, point = prompts[index % len(prompts)]
                t0 = time.perf_counter()
                try:
                    response = http.post(
                        f"/images/{image_ids[image_index]}/segment",
                        json={"points": [point], "labels": [1], "multimask": multimask},
                    )
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies[slot].append(time.perf_counter() - t0)  # requests in flight at the stop count too
                errors[slot] += 0 if ok else 1
                index += clients

    def poll_health() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                t0 = time.perf_counter()
                http.get("/health")
                health.append(time.perf_counter() - t0)
                stop.wait(0.02)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    threads.append(threading.Thread(target=poll_health))
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.perf_counter() - start  # until the last request in flight finished
    flat = [value for per_client in latencies for value in per_client]
    return len(flat) / elapsed, flat, health, sum(errors)


CLIENT_NICENESS = 10


def load_from_niced_process(pool, *args):
    """``load(*args)`` in the load-generator process (lower CPU priority): on one machine the clients' own
    Python work must not take the cores from the server it measures, as a load generator on another machine
    would not. Returns load's result plus the generator's CPU seconds."""
    return pool.apply(_load_with_cpu, args)


def _load_with_cpu(*args):
    start = time.process_time()
    result = load(*args)
    return (*result, time.process_time() - start)


def upload(url: str, images: list[np.ndarray]) -> list[str]:
    from PIL import Image

    ids = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        response = httpx.post(
            url + "/images", content=buffer.getvalue(), headers={"Content-Type": "image/png"}, timeout=300
        )
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per contender (<= 120)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds the duration is split into")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="server worker threads = in-process threads")
    parser.add_argument("--model", default=None, help="model folder/preset (default: random SAM ViT-B)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--multimask", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--image", type=Path, default=REPO / "examples" / "truck.jpg")
    args = parser.parse_args()
    seconds = min(max(args.duration, 1.0), 120.0)
    # the server shares the cores among its workers (robosam serve's default); the loop gets the same share
    torch_threads = share_cores(args.workers)

    truck = load_image(args.image)
    images = [truck, np.ascontiguousarray(truck[:, ::-1])]
    rng = np.random.default_rng(0)
    height, width = truck.shape[:2]
    prompts = [
        (int(i % 2), [float(rng.uniform(0, width - 1)), float(rng.uniform(0, height - 1))])
        for i in range(256)
    ]

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        clients = stack.enter_context(
            multiprocessing.get_context("spawn").Pool(1, initializer=os.nice, initargs=(CLIENT_NICENESS,))
        )
        model = args.model or str(random_vit_b(Path(tmp) / "sam-vit-b-random"))
        segmenter = Segmenter(model, device=args.device)
        device = segmenter.adapter.device
        default_batching = "on" if device.type == "cuda" else "off"
        servers = {
            mode: stack.enter_context(ServerProcess(model, args.device, mode, args.workers))
            for mode in ("off", "on")
        }
        ids = {mode: upload(server.url, images) for mode, server in servers.items()}
        in_process(segmenter, images, prompts[:8], 1.0, args.multimask, args.workers)  # warm-up
        for mode, server in servers.items():
            load_from_niced_process(
                clients, server.url, ids[mode], prompts[:32], args.clients, 1.0, args.multimask
            )
        # interleaved rounds: load from other processes on this machine hits every contender alike
        library_done, library_s, library_lat = 0, 0.0, []
        served = {
            mode: {"done": 0, "s": 0.0, "lat": [], "health": [], "errors": 0, "client_cpu": 0.0}
            for mode in servers
        }
        per_round = seconds / args.rounds
        for _ in range(args.rounds):
            rate, latency = in_process(segmenter, images, prompts, per_round, args.multimask, args.workers)
            library_done += len(latency)
            library_s += len(latency) / rate
            library_lat += latency
            for mode, server in servers.items():
                rate, latency, health, errors, client_cpu = load_from_niced_process(
                    clients, server.url, ids[mode], prompts, args.clients, per_round, args.multimask
                )
                tally = served[mode]
                tally["done"] += len(latency)
                tally["s"] += len(latency) / rate if rate else per_round
                tally["lat"] += latency
                tally["health"] += health
                tally["errors"] += errors
                tally["client_cpu"] += client_cpu
        library_rate = library_done / library_s
        results = {m: (t["done"] / t["s"], t["lat"], t["health"], t["errors"]) for m, t in served.items()}
        client_share = {m: t["client_cpu"] / (t["s"] * (os.cpu_count() or 1)) for m, t in served.items()}

    print(
        f"model {args.model or 'SAM ViT-B (random weights)'} on {device}, image {width}x{height}, "
        f"{'3 masks' if args.multimask else '1 mask'} per prompt, {args.clients} clients, {seconds:.0f} s each in {args.rounds} interleaved rounds"
    )
    print(
        f"in-process loop ({args.workers} threads x {torch_threads} torch threads, as the server): {library_rate:.1f} prompts/s, p50 {percentile(library_lat, 50) * 1e3:.1f} ms, "
        f"p99 {percentile(library_lat, 99) * 1e3:.1f} ms"
    )
    for mode, (rate, latency, health, errors) in results.items():
        print(
            f"server, micro-batching {mode}: {rate:.1f} prompts/s, p50 {percentile(latency, 50) * 1e3:.1f} ms, "
            f"p99 {percentile(latency, 99) * 1e3:.1f} ms (p99/p50 {percentile(latency, 99) / percentile(latency, 50):.2f}), "
            f"/health p99 {percentile(health, 99) * 1e3:.1f} ms over {len(health)} checks, errors {errors}, "
            f"load generator {client_share[mode]:.0%} of the CPU (nice {CLIENT_NICENESS})"
        )
    on, off = results["on"][0], results["off"][0]
    print(f"micro-batching on / off throughput: {on / off:.3f} (default here: {default_batching})")
    rate = results[default_batching][0]
    print(f"server / in-process throughput: {rate / library_rate:.3f}")


if __name__ == "__main__":
    main()
