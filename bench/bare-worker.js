// Arm B of the benchmark: the runtime floor. Every request goes upstream as it came; nothing else.
export default {
  fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.UPSTREAM + url.pathname + url.search, request);
  },
};
