-- The fleet's hourly cost trend with a trailing 24-hour mean and the change against the same hour
-- a day earlier.
with hourly as (

    select
        hour_start,
        sum(total_cost) as total_cost,
        sum(idle_cost) as idle_cost

    from {{ ref('cost_by_cluster_hourly') }}
    group by all

),

final as (

    select
        h.hour_start,
        h.total_cost,
        h.idle_cost,
        avg(h.total_cost) over (
            order by h.hour_start
            range between interval 23 hours preceding and current row
        ) as trailing_24h_mean_cost,
        h.total_cost - d.total_cost as change_vs_day_before_cost

    from hourly as h
    left join hourly as d
        on d.hour_start = h.hour_start - interval 24 hours

)

select * from final
