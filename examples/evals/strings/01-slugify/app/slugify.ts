export function slugify(title: string): string {
  // TODO: turn "Hello, World!" into "hello-world".
  return title;
}
