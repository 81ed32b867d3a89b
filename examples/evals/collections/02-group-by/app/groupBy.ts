export function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  throw new Error("not implemented");
}
