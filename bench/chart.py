"""The PNG chart of a bench run (matplotlib, Agg backend): one panel per benchmark."""

import math


def _bar(ax, labels, values, title, unit, goal=None, goal_label=None, colors=None):
    values = [0 if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
    bars = ax.bar(range(len(values)), values, color=colors or ["#1f77b4"] * len(values))
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(labels, fontsize=7, rotation=20, ha="right")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    for bar, value in zip(bars, values, strict=False):
        ax.annotate(
            f"{value:,.0f}" if value >= 10 else f"{value:.1f}",
            (bar.get_x() + bar.get_width() / 2, value),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    if goal is not None:
        ax.axhline(goal, color="red", linestyle="--", linewidth=1)
        if goal_label:
            ax.annotate(goal_label, (len(values) - 0.5, goal), color="red", fontsize=7, ha="right", va="bottom")


def render(results, path, machine):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    axes = axes.flatten()
    ours, seed, light, other = "#2ca02c", "#d62728", "#98df8a", "#7f7f7f"

    write = results.get("write_path") or {}
    if write.get("medians_us"):
        m = write["medians_us"]
        bars = [
            ("ours", m["ours"], ours),
            ("ours, trigger disabled", m.get("ours_no_notify"), ours),  # PostgreSQL only
            ("(a) edx send", m["edx_send"], seed),
            ("(b) plain ORM", m["plain_orm"], other),
            ("ours marginal\nin writing tx", write["ours_marginal_us"], ours),
        ]
        bars = [bar for bar in bars if bar[1] is not None]
        _bar(
            axes[0],
            [label for label, _, _ in bars],
            [value for _, value, _ in bars],
            f"1. Write path, µs/event (ours/(a) = {write['ratio_ours_over_edx']:.2f}, goal <= 1)",
            "µs per event",
            goal=m["edx_send"],
            goal_label="(a)",
            colors=[color for _, _, color in bars],
        )

    drain = results.get("drain") or {}
    if drain.get("rates"):
        r = drain["rates"]
        labels, values, colors = ["ours", "edx direct"], [r["ours"], r["edx_direct"]], [ours, seed]
        if "jaiminho" in r:
            labels.append("jaiminho")
            values.append(r["jaiminho"])
            colors.append(other)
        _bar(
            axes[1],
            labels,
            values,
            f"2. Relay drain, events/s (ours/edx = {drain['ratio_ours_over_edx']:.2f}, goal >= 2)",
            "events/s",
            goal=2 * r["edx_direct"],
            goal_label="2 x edx",
            colors=colors,
        )

    latency = results.get("latency") or {}
    ax = axes[2]
    if latency.get("ack"):
        names = ["p50", "p95", "p99"]
        x = list(range(len(names)))
        ax.bar(
            [i - 0.2 for i in x],
            [latency["ack"][p] for p in names],
            width=0.4,
            color=ours,
            label="commit -> acknowledged and committed",
        )
        ax.bar(
            [i + 0.2 for i in x],
            [latency["commit_to_claim"][p] for p in names],
            width=0.4,
            color=light,
            label="of which commit -> relay read it",
        )
        ax.set_xticks(x)
        ax.set_xticklabels(names, fontsize=8)
        ax.axhline(10, color="red", linestyle=":", linewidth=1)
        ax.axhline(50, color="red", linestyle="--", linewidth=1)
        ax.set_title(f"3. Commit -> ack at {latency['rate']}/s, ms (goals: p50 10, p99 50)", fontsize=9)
        ax.set_ylabel("ms", fontsize=8)
        ax.legend(fontsize=7)

    rss = results.get("rss") or {}
    ax = axes[3]
    if rss.get("runs"):
        for run in rss["runs"]:
            samples = run["samples"]
            ax.plot([s[1] for s in samples], [s[2] for s in samples], label=f"backlog {run['backlog']:,}")
        ax.axhline(rss["goal_mb"], color="red", linestyle="--", linewidth=1)
        ax.set_ylim(0, max(rss["goal_mb"] * 1.2, max(r["peak_rss_mb"] for r in rss["runs"]) * 1.1))
        from matplotlib.ticker import FuncFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1000:.0f}k"))
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("events drained", fontsize=8)
        ax.set_ylabel("relay RSS, MB", fontsize=8)
        ax.set_title("4. Relay RSS while draining (goal <= 150 MB)", fontsize=9)
        ax.legend(fontsize=7)

    consumer = results.get("consumer") or {}
    figures = consumer.get("figures") or {}
    if figures.get("edx_event_bus_outbox_events_per_s"):
        _bar(
            axes[4],
            ["ours", "edx-event-bus-kafka"],
            [figures["edx_event_bus_outbox_events_per_s"], figures["edx_event_bus_kafka_events_per_s"]],
            f"5. Consumer, events/s (ratio {figures.get('ratio', float('nan')):.2f}, goal >= 1.5)",
            "events/s",
            goal=1.5 * figures["edx_event_bus_kafka_events_per_s"],
            goal_label="1.5 x edx",
            colors=[ours, seed],
        )
    else:
        axes[4].text(0.5, 0.5, "5. Consumer benchmark not run", ha="center", va="center")
        axes[4].set_axis_off()

    axes[5].set_axis_off()
    import textwrap

    text = "\n".join(
        textwrap.fill(f"{k.replace('_', ' ')}: {v}", 75, subsequent_indent="    ") for k, v in machine.items()
    )
    axes[5].text(0, 1, text, fontsize=6.5, va="top", family="monospace")
    fig.suptitle(
        "edx-event-bus-outbox benchmarks (make bench) - PostgreSQL, real Kafka and schema registry", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
