-- Monthly bill per team: exact costs, plus billed_amount rounded to the cent so that the rounded
-- bills add up to the rounded fleet total (largest remainder: the cents lost to flooring go to
-- the teams with the largest fractions).
with allocated as (

    select * from {{ ref('cost_allocated_hourly') }}

),

rules as (

    select * from {{ source('config', 'rules') }}

),

per_team as (

    select
        strftime(hour_start, '%Y-%m') as month,
        team,
        sum(allocated_cost) filter (where cost_type = 'direct') as direct_cost,
        sum(allocated_cost) filter (where cost_type = 'shared') as shared_cost,
        sum(allocated_cost) filter (where cost_type = 'idle') as idle_cost,
        sum(allocated_cost) filter (where cost_type = 'unmounted') as unmounted_cost,
        sum(allocated_cost) as total_cost,
        count(distinct cluster) as clusters

    from allocated
    group by all

),

cents as (

    select
        *,
        cast(floor(total_cost * 100) as bigint) as floor_cents,
        total_cost * 100 - floor(total_cost * 100) as fraction,
        cast(round(sum(total_cost) over (partition by month) * 100, 0) as bigint) as month_cents

    from per_team

),

ranked as (

    select
        *,
        row_number() over (partition by month order by fraction desc, team) as fraction_rank,
        month_cents - sum(floor_cents) over (partition by month) as cents_to_give

    from cents

),

final as (

    select
        month,
        team,
        coalesce(direct_cost, 0) as direct_cost,
        coalesce(shared_cost, 0) as shared_cost,
        coalesce(idle_cost, 0) as idle_cost,
        coalesce(unmounted_cost, 0) as unmounted_cost,
        total_cost,
        cast(floor_cents + case when fraction_rank <= cents_to_give then 1 else 0 end as decimal(18, 0))
            * cast(0.01 as decimal(3, 2)) as billed_amount,
        clusters,
        (select currency from rules) as currency

    from ranked

)

select * from final
