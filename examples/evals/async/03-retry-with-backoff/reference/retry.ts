import { sleep } from "./lib/sleep";

export async function retry<T>(task: () => Promise<T>, attempts: number): Promise<T> {
  let delay = 100;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await task();
    } catch (error) {
      lastError = error;
      if (attempt < attempts) {
        await sleep(delay);
        delay *= 2;
      }
    }
  }
  throw lastError;
}
