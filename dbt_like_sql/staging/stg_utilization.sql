with source as (

    select * from {{ source('raw', 'utilization') }}

),

renamed as (

    select
        cluster,
        hour_start,
        namespace,
        pod,
        container,
        node,
        cpu_samples,
        cpu_usage_avg_cores,
        cpu_usage_max_cores,
        cpu_usage_p95_cores,
        memory_usage_avg_bytes / 1073741824.0 as memory_usage_avg_gib,
        memory_usage_max_bytes / 1073741824.0 as memory_usage_max_gib,
        memory_usage_p95_bytes / 1073741824.0 as memory_usage_p95_gib,
        cpu_request_cores,
        cpu_limit_cores,
        memory_request_bytes / 1073741824.0 as memory_request_gib,
        memory_limit_bytes / 1073741824.0 as memory_limit_gib,
        coalesce(gpu_request, 0) as gpu_request

    from source

)

select * from renamed
