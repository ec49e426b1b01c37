-- Allocations with the team and product line that pay for them, and how each cost is treated:
-- direct (a team's own workload), shared (a shared namespace), idle, or unmounted/unallocated.
-- The team comes from the first source in the configured precedence that names one.
with allocation as (

    select * from {{ ref('stg_allocation') }}

),

rules as (

    select * from {{ source('config', 'rules') }}

),

candidates as (

    select
        a.*,
        (
            select l.value
            from unnest(a.labels) as t (l)
            join {{ source('config', 'team_label_keys') }} as k
                on k.source = 'pod_label' and k.label_key = l.key
            where l.value <> ''
            order by k.position
            limit 1
        ) as pod_label_team,
        (
            select l.value
            from unnest(a.namespace_labels) as t (l)
            join {{ source('config', 'team_label_keys') }} as k
                on k.source = 'namespace_label' and k.label_key = l.key
            where l.value <> ''
            order by k.position
            limit 1
        ) as namespace_label_team,
        m.team as namespace_map_team,
        (
            select l.value
            from unnest(a.labels) as t (l)
            where l.key = (select product_line_label from rules) and l.value <> ''
            limit 1
        ) as product_line_label_value

    from allocation as a
    left join {{ source('config', 'team_namespace_map') }} as m
        on m.namespace = a.namespace

),

precedence as (

    select
        c.*,
        (
            select
                case p.source
                    when 'pod_label' then c.pod_label_team
                    when 'namespace_label' then c.namespace_label_team
                    else c.namespace_map_team
                end
            from {{ source('config', 'team_precedence') }} as p
            where case p.source
                when 'pod_label' then c.pod_label_team
                when 'namespace_label' then c.namespace_label_team
                else c.namespace_map_team
            end is not null
            order by p.position
            limit 1
        ) as resolved_team

    from candidates as c

),

final as (

    select
        p.* exclude (resolved_team),
        case
            when p.allocation_kind = 'idle' then 'idle'
            when p.allocation_kind in ('unmounted', 'unallocated') then 'unmounted'
            when p.namespace in (select namespace from {{ source('config', 'shared_namespaces') }})
                then 'shared'
            else 'direct'
        end as cost_type,
        coalesce(p.resolved_team, r.default_team) as team,
        coalesce(p.product_line_label_value, r.default_product_line) as product_line

    from precedence as p
    cross join rules as r

)

select * from final
