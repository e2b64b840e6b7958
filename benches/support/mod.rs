//! Shared by the micro-benchmarks: log content in the agent's format.

/// One job as the listener logs it, with the lines around it (~1 KB).
pub fn job_cycle(i: usize) -> String {
    let t = format!(
        "2026-01-05 {:02}:{:02}:{:02}Z",
        i / 3600 % 24,
        i / 60 % 60,
        i % 60
    );
    let id = format!("7f1c2a44-0d1e-5c8e-9b61-{i:012}");
    format!(
        "[{t} INFO JobDispatcher] Job request {id} processed succeed.\n\
         [{t} INFO Terminal] WRITE LINE: {t}: Running job: build {i} (ubuntu, release)\n\
         [{t} INFO JobDispatcher] Start renew job request {i} for job {id}.\n\
         [{t} INFO JobDispatcher] Successfully renew job request {i}, job is valid till 2026-01-05 10:00:00Z\n\
         [{t} INFO JobDispatcher] Worker finished for job {id}. Code: 100\n\
         [{t} INFO JobDispatcher] finish job request for job {id} with result: Succeeded\n\
         [{t} INFO Terminal] WRITE LINE: {t}: Job build {i} (ubuntu, release) completed with result: Succeeded\n\
         [{t} INFO JobDispatcher] Stop renew job request for job {id}.\n\
         [{t} INFO MessageListener] Get next message with last message id {i}\n"
    )
}
