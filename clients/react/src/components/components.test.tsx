import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { STATUSES, type Status } from "../status";
import { LoadingSpinner } from "./LoadingSpinner";
import { ProgressIndicator } from "./ProgressIndicator";
import { StatusBadge } from "./StatusBadge";

describe("LoadingSpinner", () => {
  it.each(["sm", "md", "lg"] as const)("renders the %s size as a labelled status", (size) => {
    const { container } = render(<LoadingSpinner size={size} />);
    expect(screen.getByRole("status")).toHaveTextContent("Loading");
    expect(container.querySelector(`.ih-spinner--${size}`)).not.toBeNull();
  });

  it("defaults to md and says what is loading", () => {
    const { container } = render(<LoadingSpinner label="Loading documents" />);
    expect(screen.getByRole("status")).toHaveTextContent("Loading documents");
    expect(container.querySelector(".ih-spinner--md")).not.toBeNull();
  });
});

describe("StatusBadge", () => {
  it("gives every status of the server a badge of its own", () => {
    const seen = STATUSES.map((status) => {
      const { unmount } = render(<StatusBadge status={status} />);
      const badge = screen.getByRole("status");
      const look = {
        text: badge.textContent,
        className: badge.className,
        icon: badge.querySelector(".ih-badge__icon")?.textContent ?? "spinner",
      };
      expect(badge).toHaveAttribute("data-status", status);
      expect(badge).toHaveAttribute("aria-live", "polite");
      unmount();
      return look;
    });
    expect(new Set(seen.map((look) => look.text)).size).toBe(STATUSES.length);
    expect(new Set(seen.map((look) => look.className)).size).toBe(STATUSES.length);
    expect(seen.map((look) => look.text)).toEqual([
      "○Pending",
      "Processing",
      "Provisioning",
      "✓Ready",
      "✕Failed",
      "!Error",
    ]);
  });

  it.each(["processing", "provisioning"] as Status[])("spins while %s", (status) => {
    render(<StatusBadge status={status} />);
    expect(screen.getByRole("status").querySelector(".ih-spinner")).not.toBeNull();
  });

  it.each(["pending", "ready", "failed", "error"] as Status[])("does not spin when %s", (status) => {
    render(<StatusBadge status={status} />);
    expect(screen.getByRole("status").querySelector(".ih-spinner")).toBeNull();
  });

  it("shows the error of a failed document", () => {
    render(<StatusBadge status="failed" message="Parsing failed: the file is empty" />);
    expect(screen.getByRole("status")).toHaveTextContent("Failed");
    expect(screen.getByRole("status")).toHaveTextContent("Parsing failed: the file is empty");
  });

  it("shows a cancelled job's reason, in the seed's failed status", () => {
    render(<StatusBadge status="failed" message="cancelled by user" size="sm" />);
    const badge = screen.getByRole("status");
    expect(badge).toHaveTextContent("cancelled by user");
    expect(badge).toHaveClass("ih-badge--sm", "ih-badge--problem");
  });

  it("announces a change from the same live region", () => {
    const { rerender } = render(<StatusBadge status="pending" />);
    const region = screen.getByRole("status");
    rerender(<StatusBadge status="processing" />);
    expect(screen.getByRole("status")).toBe(region);
    expect(region).toHaveTextContent("Processing");
    rerender(<StatusBadge status="ready" />);
    expect(region).toHaveTextContent("Ready");
  });

  it("leaves out an empty message", () => {
    const { container } = render(<StatusBadge status="ready" message={null} />);
    expect(container.querySelector(".ih-badge__message")).toBeNull();
  });
});

describe("ProgressIndicator", () => {
  const steps = [
    { label: "Parsing PDF", completed: true },
    { label: "Chunking text", completed: true },
    { label: "Generating embeddings", completed: false },
    { label: "Indexing to vector store", completed: false },
  ];

  it("renders the seed's example as one progressbar over its steps", () => {
    render(
      <ProgressIndicator
        title="Processing document..."
        description="This may take a few minutes"
        steps={steps}
      />,
    );
    const bar = screen.getByRole("progressbar", { name: "Processing document..." });
    expect(bar).toHaveAttribute("aria-valuemin", "0");
    expect(bar).toHaveAttribute("aria-valuemax", "4");
    expect(bar).toHaveAttribute("aria-valuenow", "2");
    expect(bar).toHaveAttribute(
      "aria-valuetext",
      "2 of 4 steps completed; next: Generating embeddings",
    );
    expect(bar).toHaveAccessibleDescription("This may take a few minutes");
    const items = within(screen.getByRole("list")).getAllByRole("listitem");
    expect(items.map((item) => item.dataset.state)).toEqual([
      "completed",
      "completed",
      "pending",
      "pending",
    ]);
    expect(items[0]).toHaveTextContent("Parsing PDF (done)");
  });

  it("follows the server's step states: the active one is the current step", () => {
    render(
      <ProgressIndicator
        title="Processing"
        steps={[
          { label: "Parsing", completed: true, state: "completed" },
          { label: "Chunking", completed: false, state: "active" },
          { label: "Embedding", completed: false, state: "pending" },
        ]}
      />,
    );
    const active = screen.getByText("Chunking").closest("li");
    expect(active).toHaveAttribute("aria-current", "step");
    expect(active).toHaveTextContent("(in progress)");
    expect(screen.getByRole("progressbar")).not.toHaveAccessibleDescription();
  });

  it("marks a failed step", () => {
    render(
      <ProgressIndicator
        title="Processing"
        steps={[{ label: "Parsing", completed: false, state: "failed" }]}
      />,
    );
    expect(screen.getByRole("listitem")).toHaveAttribute("data-state", "failed");
    expect(screen.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "0");
  });

  it("copes with no steps yet", () => {
    render(<ProgressIndicator title="Waiting" steps={[]} />);
    expect(screen.getByRole("progressbar")).toHaveAttribute("aria-valuetext", "0 of 0 steps completed");
  });
});
