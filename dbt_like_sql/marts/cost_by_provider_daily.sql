with hourly as (

    select * from {{ ref('cost_by_cluster_hourly') }}

),

per_day as (

    select
        day,
        provider,
        count(distinct cluster) as clusters,
        sum(workload_cost) as workload_cost,
        sum(idle_cost) as idle_cost,
        sum(total_cost) as total_cost

    from hourly
    group by all

),

final as (

    select
        *,
        total_cost / nullif(sum(total_cost) over (partition by day), 0) as share_of_fleet,
        idle_cost / nullif(total_cost, 0) as idle_share

    from per_day

)

select * from final
