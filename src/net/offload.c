/*
 * offload.c - a small thread pool for blocking calls (tern_offload).
 *
 * Jobs are queued FIFO under one mutex; a job struct lives on the stack of
 * the coroutine that waits for it, so queueing allocates nothing.  When a
 * job's function returns, the pool hands it back to the job's loop with
 * loop_post_done(), which wakes that loop's thread to resume the coroutine.
 */
#include <pthread.h>

#include "net/loop.h"

struct offload_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    offload_job *head, *tail;
    int stopping;
    unsigned nthreads;
    pthread_t threads[];
};

static offload_pool *_Atomic g_default;

void offload_set_default(offload_pool *p)
{
    g_default = p;
}
offload_pool *offload_default(void)
{
    return g_default;
}

static void *offload_main(void *arg)
{
    offload_pool *p = arg;

    for (;;) {
        offload_job *job;

        pthread_mutex_lock(&p->mu);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        job = p->head;
        if (job == NULL) { /* stopping and drained */
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->head = job->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);

        job->fn(job->arg);
        loop_post_done(job->loop, job);
    }
}

offload_pool *offload_pool_new(unsigned nthreads)
{
    offload_pool *p;

    if (nthreads == 0)
        nthreads = 1;
    p = tern_calloc(1, sizeof *p + nthreads * sizeof(pthread_t));
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, offload_main, p) != 0)
            break;
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        offload_pool_free(p);
        return NULL;
    }
    return p;
}

void offload_pool_free(offload_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    tern_free(p);
}

int offload_submit(offload_pool *p, offload_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return TERN_ECANCELED;
    }
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}
