import type { Problem } from "../lib/errors";

/** An error the user should read, announced to screen readers. */
export function ProblemBox({ problem, children }: { problem: Problem; children?: React.ReactNode }) {
  return (
    <div className={`problem problem-${problem.kind}`} role="alert" data-problem={problem.kind}>
      <strong>{problem.title}</strong>
      <p>{problem.detail}</p>
      {children}
    </div>
  );
}
