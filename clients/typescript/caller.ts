// A typed caller of the Waypoint API, compiled with `tsc --strict` against the types that
// openapi-typescript generates from openapi/openapi.json (`make typescript`). If the document
// makes a frontend's ordinary calls impossible to type, this stops compiling.
import type { components, operations, paths } from "./build/api";

type Schemas = components["schemas"];
type GoalCreate = Schemas["GoalCreate"];
type Goal = Schemas["GoalOut"];
type GoalPage = Schemas["GoalPage"];
type StepUpdate = Schemas["StepUpdate"];
type Step = Schemas["StepOut"];
type Problem = Schemas["Problem"];
type GoalQuery = NonNullable<operations["goals_list"]["parameters"]["query"]>;

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.status} ${problem.title}`);
  }
}

export class Waypoint {
  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown, query?: string): Promise<T> {
    const init: RequestInit = {
      method,
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json" },
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(`${this.base}${path}${query ?? ""}`, init);
    if (!response.ok) throw new ApiError((await response.json()) as Problem);
    return (await response.json()) as T;
  }

  // GET /v1/goals
  listGoals(query: GoalQuery = {}): Promise<GoalPage> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) params.set(key, String(value));
    }
    const search = params.size ? `?${params}` : "";
    return this.call<GoalPage>("GET", "/v1/goals", undefined, search);
  }

  // POST /v1/goals
  createGoal(goal: GoalCreate): Promise<Goal> {
    return this.call<Goal>("POST", "/v1/goals", goal);
  }

  // PATCH /v1/steps/{step_id}
  updateStep(stepId: string, changes: StepUpdate): Promise<Step> {
    return this.call<Step>("PATCH", `/v1/steps/${encodeURIComponent(stepId)}`, changes);
  }
}

// The calls a frontend makes: only what it means to send, the defaults left to the server.
export async function example(api: Waypoint, stepId: string): Promise<number> {
  const goal = await api.createGoal({
    title: "Walk to the shop on my own",
    gas_levels: {
      "-2": "Stays at home",
      "-1": "Walks to the corner",
      "0": "Walks to the shop with someone",
      "1": "Walks to the shop alone",
      "2": "Walks to the shop alone and buys something",
    },
  });
  const status: Schemas["GoalStatus"] = goal.status;
  const page = await api.listGoals({ status: "active", limit: 10 });
  const step: Step = await api.updateStep(stepId, { status: "done" });
  const done: Schemas["StepStatus"] = step.status;
  const path: keyof paths = "/v1/steps/{step_id}";
  return page.items.length + status.length + done.length + path.length + goal.progress.percent;
}
