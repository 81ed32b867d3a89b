import { sleep } from "./lib/sleep";

export async function retry<T>(task: () => Promise<T>, attempts: number): Promise<T> {
  return task();
}
